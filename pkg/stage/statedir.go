package stage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// stateDirPattern names the runners' state directories under
// Config.StateDir.
const stateDirPattern = "datamill-state-*"

// stateDir is a runner's directory of state files, locked while the runner
// lives. Its files are scratch: a runner that restarts reads its state
// back from the changelog, so a directory left by a process that died is
// removed by the next runner that starts beside it.
type stateDir struct {
	path string
	lock *os.File // holds an exclusive flock until remove
}

// openStateDir removes the directories under base that no live runner
// holds, then makes and locks a new one.
func openStateDir(base string, log *zap.Logger) (*stateDir, error) {
	if base == "" {
		base = os.TempDir()
	}
	removeStaleStateDirs(base, log)
	path, err := os.MkdirTemp(base, stateDirPattern)
	if err != nil {
		return nil, fmt.Errorf("state directory (STAGE_STATE_DIR): %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(path, "lock"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- in the directory just made under STAGE_STATE_DIR
	if err == nil {
		err = tryLock(lock)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("lock state directory %s: %w", path, err), os.RemoveAll(path))
	}
	return &stateDir{path: path, lock: lock}, nil
}

// file is where the state of input partition p is kept.
func (s *stateDir) file(p int32) string {
	return filepath.Join(s.path, "partition-"+strconv.Itoa(int(p)))
}

// remove deletes the directory and releases its lock.
func (s *stateDir) remove() error {
	return errors.Join(os.RemoveAll(s.path), s.lock.Close())
}

// removeStaleStateDirs removes the state directories under base whose lock
// no process holds. One without a lock file is a runner's that is being
// made, unless it is older than a minute.
func removeStaleStateDirs(base string, log *zap.Logger) {
	dirs, _ := filepath.Glob(filepath.Join(base, stateDirPattern))
	for _, dir := range dirs {
		lock, err := os.Open(filepath.Join(dir, "lock")) // #nosec G304 -- a runner's state directory under STAGE_STATE_DIR
		if err != nil {
			if info, serr := os.Stat(dir); serr != nil || time.Since(info.ModTime()) < time.Minute {
				continue
			}
		} else {
			err := tryLock(lock)
			_ = lock.Close() // releases the lock just taken, if any
			if err != nil {
				continue // a live runner's
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			log.Warn("could not remove a stale state directory", zap.String("dir", dir), zap.Error(err))
			continue
		}
		log.Info("removed the state directory of a runner that is gone", zap.String("dir", dir))
	}
}

// tryLock takes an exclusive flock on f, or fails at once if a process
// holds one. The kernel releases it when the process ends, however it ends.
func tryLock(f *os.File) error {
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) // #nosec G115 -- a file descriptor fits an int
}
