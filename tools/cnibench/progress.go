package cnibench

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress draws a one-line bar on a terminal. A nil *Progress draws
// nothing, so callers need no checks.
type Progress struct {
	w io.Writer

	mu    sync.Mutex
	label string
	total int
	done  int
	drawn time.Time
}

// NewProgress draws on w (stderr, when it is a terminal or --progress).
func NewProgress(w io.Writer) *Progress { return &Progress{w: w} }

// Start begins a bar of total steps.
func (p *Progress) Start(label string, total int) {
	p.locked(func() {
		p.label, p.total, p.done, p.drawn = label, total, 0, time.Time{}
		p.drawLocked()
	})
}

// Step advances the bar; it redraws at most ten times a second.
func (p *Progress) Step() {
	p.locked(func() {
		p.done++
		if time.Since(p.drawn) >= 100*time.Millisecond || p.done == p.total {
			p.drawLocked()
		}
	})
}

// Done erases the bar.
func (p *Progress) Done() {
	p.locked(func() { fmt.Fprint(p.w, "\r\033[K") })
}

// locked runs fn holding p's lock; on a nil p it does nothing.
func (p *Progress) locked(fn func()) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fn()
}

func (p *Progress) drawLocked() {
	const width = 30
	filled := 0
	if p.total > 0 {
		filled = min(width, p.done*width/p.total)
	}
	fmt.Fprintf(p.w, "\r\033[K%-14s [%s%s] %d/%d", p.label, strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.done, p.total)
	p.drawn = time.Now()
}
