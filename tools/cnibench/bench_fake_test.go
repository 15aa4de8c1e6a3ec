package cnibench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
)

// fakePlugin records calls into a log shared by all fakes of a test and
// keeps the attachments it holds.
type fakePlugin struct {
	label string
	log   *callLog
	// failAdd makes the n-th ADD (1-based) fail with a CNI error.
	failAdd int
	// blockAdd makes ADD wait until ctx ends (for interruption tests).
	blockAdd bool
	started  chan struct{}
	// checkNetns makes ADD check that the namespace exists.
	checkNetns bool
	badNetns   []string

	mu       sync.Mutex
	adds     int
	attached map[string]bool
}

var _ Plugin = (*fakePlugin)(nil)

type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, s)
}

func newFake(label string, log *callLog) *fakePlugin {
	return &fakePlugin{label: label, log: log, attached: map[string]bool{}, started: make(chan struct{}, 1024)}
}

func (f *fakePlugin) Label() string { return f.label }

func (f *fakePlugin) Add(ctx context.Context, a *Attachment) error {
	f.log.add(f.label + " ADD")
	f.mu.Lock()
	if _, err := os.Stat(a.Netns); f.checkNetns && err != nil {
		f.badNetns = append(f.badNetns, err.Error())
	}
	f.adds++
	n := f.adds
	f.attached[a.ContainerID+"/"+a.IfName] = true
	f.mu.Unlock()
	f.started <- struct{}{}
	if f.blockAdd {
		<-ctx.Done()
		return ctx.Err()
	}
	if n == f.failAdd {
		return types.NewError(uint(contracts.CodeVswitch), "bridge br0 is broken", "")
	}
	return nil
}

func (f *fakePlugin) Del(_ context.Context, a *Attachment) error {
	f.log.add(f.label + " DEL")
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.attached, a.ContainerID+"/"+a.IfName)
	return nil
}

func (f *fakePlugin) netnsErrs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.badNetns
}

func (f *fakePlugin) held() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.attached)
}

func newTestBench(t *testing.T, plugins ...Plugin) *Bench {
	t.Helper()
	b, err := New(plugins, Options{Netns: NetnsNone, OpTimeout: 5 * time.Second})
	require.NoError(t, err)
	return b
}

func TestSchedule(t *testing.T) {
	tests := []struct {
		iterations, plugins int
		want                []int
	}{
		{3, 1, []int{0, 0, 0}},
		{3, 2, []int{0, 1, 0, 1, 0, 1}},
		{0, 2, []int{}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%dx%d", tt.iterations, tt.plugins), func(t *testing.T) {
			assert.Equal(t, tt.want, Schedule(tt.iterations, tt.plugins))
		})
	}
}

func TestInterleaving(t *testing.T) {
	tests := []struct {
		name string
		run  func(context.Context, *Bench) ([]Result, error)
		want []string
	}{
		{"latency: A and B alternate per iteration, each ADD followed by its DEL",
			func(ctx context.Context, b *Bench) ([]Result, error) { return b.Latency(ctx, 2) },
			[]string{"A ADD", "A DEL", "B ADD", "B DEL", "A ADD", "A DEL", "B ADD", "B DEL"}},
		{"burst: A's round, then B's; all ADDs before the DELs",
			func(ctx context.Context, b *Bench) ([]Result, error) { return b.Burst(ctx, 2, 2) },
			[]string{"A ADD", "A ADD", "A DEL", "A DEL", "B ADD", "B ADD", "B DEL", "B DEL",
				"A ADD", "A ADD", "A DEL", "A DEL", "B ADD", "B ADD", "B DEL", "B DEL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &callLog{}
			b := newTestBench(t, newFake("A", log), newFake("B", log))
			res, err := tt.run(context.Background(), b)
			require.NoError(t, err)
			assert.Equal(t, tt.want, log.calls)
			require.Len(t, res, 2)
			assert.Equal(t, "A", res[0].Label)
			assert.Equal(t, "B", res[1].Label)
			assert.Zero(t, b.Live())
		})
	}
}

func TestWarmupIsNotRecorded(t *testing.T) {
	log := &callLog{}
	a := newFake("A", log)
	b, err := New([]Plugin{a}, Options{Netns: NetnsNone, Warmup: 2})
	require.NoError(t, err)
	res, err := b.Latency(context.Background(), 3)
	require.NoError(t, err)
	assert.Len(t, log.calls, 2*(2+3))
	assert.Equal(t, 3, res[0].Phases[0].OK)
}

func TestFailuresAreCountedByCode(t *testing.T) {
	log := &callLog{}
	a := newFake("A", log)
	a.failAdd = 2
	b := newTestBench(t, a)
	res, err := b.Latency(context.Background(), 4)
	require.NoError(t, err, "a failed ADD is a result, not a stop")
	add := res[0].Phases[0]
	assert.Equal(t, 3, add.OK)
	assert.Equal(t, 1, add.Failed)
	require.Len(t, add.Failures, 1)
	assert.Equal(t, uint(contracts.CodeVswitch), add.Failures[0].Code)
	assert.Contains(t, add.Failures[0].Example, "br0")
	assert.Equal(t, 4, res[0].Phases[1].OK, "DEL after a failed ADD must be done and succeed")
	assert.Zero(t, a.held())
}

func TestBurstThroughput(t *testing.T) {
	a := newFake("A", &callLog{})
	b := newTestBench(t, a)
	res, err := b.Burst(context.Background(), 16, 1)
	require.NoError(t, err)
	add := res[0].Phases[0]
	assert.Equal(t, 16, add.OK)
	assert.Positive(t, add.WallMs)
	assert.Positive(t, add.PerSecond)
	assert.Zero(t, a.held())
}

func TestScaleSteps(t *testing.T) {
	a := newFake("A", &callLog{})
	b := newTestBench(t, a)
	res, err := b.Scale(context.Background(), ScaleOptions{K: 25, Step: 10, Probes: 2})
	require.NoError(t, err)
	var levels []int
	for _, s := range res.Scale {
		levels = append(levels, s.Attachments)
		assert.Equal(t, 2, s.Probe.N, "level %d", s.Attachments)
	}
	assert.Equal(t, []int{0, 10, 20, 25}, levels)
	assert.Equal(t, 5, res.Scale[3].Window.N)
	assert.Equal(t, 25, res.Phases[0].OK, "growth ADDs")
	assert.Equal(t, 8, res.Phases[1].OK, "probe ADDs")
	assert.Equal(t, 25, res.Phases[2].OK, "DELs")
	assert.Zero(t, a.held())
}

func TestInterruptedRunIsCleanedUp(t *testing.T) {
	a := newFake("A", &callLog{})
	a.blockAdd = true
	b := newTestBench(t, a)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := b.Burst(ctx, 8, 1)
		done <- err
	}()
	for range 8 {
		<-a.started
	}
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	assert.Equal(t, 8, b.Live(), "interrupted ADDs count as live")
	left, err := b.Cleanup(5 * time.Second)
	require.NoError(t, err)
	assert.Zero(t, left)
	assert.Zero(t, a.held())
}

// fakeChecker reports each key back after a number of failed checks.
type fakeChecker struct {
	mu       sync.Mutex
	expected []contracts.AttachmentKey
	misses   map[contracts.AttachmentKey]int
}

func (c *fakeChecker) Expect(_ context.Context, keys []contracts.AttachmentKey) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expected = keys
	c.misses = map[contracts.AttachmentKey]int{}
	for i, k := range keys {
		c.misses[k] = i % 3
	}
	return nil
}

func (c *fakeChecker) Check(_ context.Context, k contracts.AttachmentKey) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.misses[k] > 0 {
		c.misses[k]--
		return contracts.Errorf(contracts.CodeNotFound, "not yet")
	}
	return nil
}

// quickRecover are the options of a Recover run of k attachments that polls
// checker every millisecond.
func quickRecover(k, parallel int, restartCmd string, checker Checker) RecoverOptions {
	return RecoverOptions{K: k, RestartCmd: restartCmd, Checker: checker,
		Timeout: 10 * time.Second, Poll: time.Millisecond, Parallel: parallel}
}

// recoverFake runs a successful Recover of k attachments on a fake plugin,
// polling checker; the fake must hold nothing afterwards.
func recoverFake(t *testing.T, k int, checker Checker) (*Bench, *fakePlugin, Result) {
	t.Helper()
	a := newFake("A", &callLog{})
	b := newTestBench(t, a)
	res, err := b.Recover(context.Background(), quickRecover(k, 4, "true", checker))
	require.NoError(t, err)
	require.NotNil(t, res.Recover)
	assert.Equal(t, res.Recover.PerAttachment.MaxMs, res.Recover.AllBackMs)
	assert.Zero(t, a.held())
	return b, a, res
}

func TestRecover(t *testing.T) {
	checker := &fakeChecker{}
	b, a, res := recoverFake(t, 12, checker)
	assert.Len(t, checker.expected, 12)
	assert.Equal(t, 12, res.Recover.Attachments)
	assert.Equal(t, 12, res.Recover.Back)
	assert.False(t, res.Recover.TimedOut)

	t.Run("failing restart command is reported", func(t *testing.T) {
		res, err := b.Recover(context.Background(), quickRecover(2, 1, "exit 3", &fakeChecker{}))
		require.ErrorContains(t, err, "restart-cmd")
		assert.Equal(t, 1, res.Phases[1].Failed)
		assert.Zero(t, a.held(), "attachments are deleted anyway")
	})
}

// fakeBatchChecker answers passes: an error first, then the even keys,
// then all; per-key checks must not be used.
type fakeBatchChecker struct {
	fakeChecker
	passes     int
	singleUsed bool
}

var _ BatchChecker = (*fakeBatchChecker)(nil)

func (c *fakeBatchChecker) Check(context.Context, contracts.AttachmentKey) error {
	c.singleUsed = true
	return errors.New("per-key check used")
}

func (c *fakeBatchChecker) CheckMany(_ context.Context, keys []contracts.AttachmentKey) ([]contracts.AttachmentKey, error) {
	c.passes++
	switch c.passes {
	case 1:
		return nil, errors.New("vswitch not answering yet")
	case 2:
		var even []contracts.AttachmentKey
		for i, k := range c.expected {
			if i%2 == 0 && slices.Contains(keys, k) {
				even = append(even, k)
			}
		}
		return even, nil
	}
	return keys, nil
}

func TestRecoverBatchChecker(t *testing.T) {
	checker := &fakeBatchChecker{}
	_, _, res := recoverFake(t, 10, checker)
	assert.False(t, checker.singleUsed)
	assert.Equal(t, 3, checker.passes, "an error pass, a half pass, the rest")
	assert.Equal(t, 10, res.Recover.Back)
	assert.Equal(t, 10, res.Recover.PerAttachment.N)
}

func TestRealNetnsAreCreatedAndDeleted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("ip netns add needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command (iproute2)")
	}
	a := newFake("A", &callLog{})
	a.checkNetns = true
	b, err := New([]Plugin{a}, Options{Netns: NetnsReal, OpTimeout: 5 * time.Second})
	require.NoError(t, err)
	require.True(t, b.RealNetns())
	_, err = b.Burst(context.Background(), 4, 1)
	require.NoError(t, err)
	assert.Empty(t, a.netnsErrs())

	assertNoNetns(t, b)

	t.Run("namespaces of an interrupted run go too", func(t *testing.T) {
		blocked := newFake("A", &callLog{})
		blocked.blockAdd = true
		b, err := New([]Plugin{blocked}, Options{Netns: NetnsReal, OpTimeout: 5 * time.Second})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { _, err := b.Burst(ctx, 3, 1); done <- err }()
		for range 3 {
			<-blocked.started
		}
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		left, err := b.Cleanup(10 * time.Second)
		require.NoError(t, err)
		assert.Zero(t, left)
		assertNoNetns(t, b)
	})
}

func assertNoNetns(t *testing.T, b *Bench) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	require.NoError(t, err)
	assert.NotContains(t, string(out), "cnibench-"+b.runID)
}
