package strangler

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// ReloadDebounce is how long Watch waits for a burst of file events to end
// before it reloads.
const ReloadDebounce = 150 * time.Millisecond

// Watch reloads the rule file at path whenever it changes, until ctx ends.
// It watches the file's directory, so editors that write a new file and
// rename it, and Kubernetes ConfigMap symlink swaps, are seen. An invalid
// file is logged with all its errors and the live rules stay. onReload, if
// not nil, is called after each attempt with its result.
func (g *Gateway) Watch(ctx context.Context, path string, onReload func(error)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(path)); err != nil {
		return err
	}
	last := fileSum(path)
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			g.log.Error("watching route file", "path", path, "error", err.Error())
		case _, ok := <-w.Events:
			if !ok {
				return nil
			}
			timer = time.After(ReloadDebounce)
		case <-timer:
			timer = nil
			sum := fileSum(path)
			if sum == nil || bytes.Equal(sum, last) {
				continue
			}
			err := g.Reload(path)
			if err == nil {
				last = sum
			}
			if onReload != nil {
				onReload(err)
			}
		}
	}
}

// Reload loads the rule file at path and logs the outcome: the change
// counts on success, every error (file:line:column) on failure, in which
// case the live rules stay.
func (g *Gateway) Reload(path string) error {
	before := g.Rules()
	if err := g.LoadFile(path); err != nil {
		g.log.Error("route file rejected; the previous rules keep serving", "path", path, "errors", err.Error())
		return err
	}
	g.log.Info("route rules loaded", "path", path, "routes", len(g.Rules().Routes), "changed", before != nil)
	return nil
}

func fileSum(path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	s := sha256.Sum256(data)
	return s[:]
}
