// Package stage is the consume → transform → produce loop that every
// Kafka-to-Kafka and Kafka-to-database step of datamill runs.
//
// A Runner consumes one input topic in a consumer group, polls a batch,
// decodes it, hands the decoded messages to the step's Handler (plain Go
// values, no Kafka types), produces the handler's outputs and the dead
// letters, and commits the consumed offsets. Everything a batch produces and
// the offsets it consumed are committed in one Kafka transaction
// (franz-go's GroupTransactSession; inputs are read with read_committed).
//
// # Delivery guarantee
//
// Effectively once. For a Kafka-to-Kafka step an input offset is committed
// if and only if the outputs and dead letters made from it are, so a crash at
// any point replays exactly the uncommitted batch and downstream
// read_committed consumers never see a record twice.
//
// For a step with a database sink the handler writes and commits its
// database transaction before it returns; only then does the runner produce
// the outputs and commit the Kafka transaction carrying the offsets. The
// commit order is therefore: database, then outputs and offsets together. A
// crash between the two replays the batch: the handler must be idempotent
// and recognise rows it already applied for the same event, returning their
// outputs again so that nothing is lost downstream.
//
// A rebalance during a batch aborts the batch's transaction; the partition's
// new owner replays it from the last commit, so nothing is lost or doubled.
// A transaction that cannot end within the transaction timeout (the
// group's session failed mid-batch, as a broker restart does, and franz-go
// waits for a heartbeat the stalled group never sends) is given up: the
// runner consumes in a new session, whose producer aborts it, and the batch
// is replayed.
// On shutdown (the context passed to Run ends) the runner stops polling,
// finishes and commits the batch in flight, and leaves the group.
//
// # Duplicates
//
// A Spec with a Digest drops the outputs that repeat the last output
// committed for their key and counts their inputs as duplicates, so that
// in = out + dead letters + duplicates still holds. The last digest of
// every key is state of the input partition: it is written to partition p
// of a compacted changelog topic in the same transaction as the batch that
// changed it, read back when a member first handles partition p, and
// forgotten when p is revoked. A crash or rebalance therefore never keeps
// the digest of an output that was not committed, nor loses one that was.
// Between the two, a runner keeps its partitions' digests on local disk
// (Config.StateDir), so that its memory does not grow with the keys.
//
// # Errors
//
// Classify sorts errors into two classes.
//
// Permanent errors belong to one record: it cannot be decoded, or the step
// rejects it (Reject, Permanent). The record goes to the dead-letter topic,
// in the same transaction as the batch's outputs, with its original key and
// bytes and headers naming the stage, the reasons and its origin topic,
// partition and offset; the rest of the batch goes on.
//
// A dead-letter flood, more than STAGE_DLQ_MAX_RATE of the last
// STAGE_DLQ_WINDOW records dead-lettered, is an alert, never a crash: bad
// records must not stop the good ones behind them. By default
// (STAGE_DLQ_ON_FLOOD=alert) the flooding batches commit as any other, and
// while the rate stays above the threshold the runner sets the gauge
// datamill_stage_dlq_flood to 1, counts the flood once in
// datamill_stage_dlq_floods_total, stays ready with the flood and its rate
// as the readiness detail (Spec.OnReady with ready true and a reason), and
// logs one warning when the flood starts and one when it ends.
//
// With STAGE_DLQ_ON_FLOOD=stop, the line stops instead, on purpose: the
// runner aborts the flooding batch, writes a stop record (keyed by its
// consumer group) to the compacted control topic (ControlTopic), leaves
// the group and waits, not ready, naming the reason and the command that
// resumes it; the process stays up, and every runner of the group, a
// restarted one too, reads the stop and waits as well. Resume (the
// `datamill resume <stage> <dataset>` command) writes the resume record;
// the runners notice it within about a second and go on, this time
// committing the flooding batch and the rest of the flood in progress to
// the dead-letter topic. The next flood, once the rate fell back under the
// threshold, stops them again. A step with a database sink has committed
// the batch's rows before the check: only the Kafka transaction is aborted,
// and the batch is replayed after the resume as after a crash, which its
// idempotent handler absorbs. Run never returns ErrDeadLetterFlood; it is
// the cause a stopped runner reports.
//
// Every other error is transient (broker, registry, database, network): the
// batch is retried with backoff; when the retries run out its transaction
// is aborted, nothing is committed, and the runner pauses and replays the
// batch from the last commit until the dependency is back. Transient errors
// never produce dead letters.
package stage
