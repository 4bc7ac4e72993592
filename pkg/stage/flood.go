package stage

// floodWindow tracks the dead-letter rate over roughly the last size
// committed records, batch by batch.
type floodWindow struct {
	size, minRecords int
	maxRate          float64
	batches          []batchCount
	in, dead         int
}

type batchCount struct{ in, dead int }

// exceeds reports whether committing a batch of in records with dead dead
// letters would put the rate over the window above the threshold.
func (w *floodWindow) exceeds(in, dead int) bool {
	tin, tdead := w.in+in, w.dead+dead
	for _, b := range w.batches {
		if tin-b.in < w.size {
			break
		}
		tin -= b.in
		tdead -= b.dead
	}
	return tin >= w.minRecords && tin > 0 && float64(tdead)/float64(tin) > w.maxRate
}

// add records a committed batch.
func (w *floodWindow) add(in, dead int) {
	w.batches = append(w.batches, batchCount{in, dead})
	w.in += in
	w.dead += dead
	for len(w.batches) > 1 && w.in-w.batches[0].in >= w.size {
		w.in -= w.batches[0].in
		w.dead -= w.batches[0].dead
		w.batches = w.batches[1:]
	}
}

// above reports whether the rate over the window is above the threshold.
func (w *floodWindow) above() bool { return w.exceeds(0, 0) }

// rate returns the share of dead letters among the window's records, and
// their number.
func (w *floodWindow) rate() (float64, int) {
	if w.in == 0 {
		return 0, 0
	}
	return float64(w.dead) / float64(w.in), w.in
}
