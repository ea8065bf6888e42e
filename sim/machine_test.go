package sim

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestMachineBehind: goroutines handing work to each other on idle cores
// do not put the machine behind; on one core shared with fifty that never
// block, each waits its turn behind them, and it is behind.
func TestMachineBehind(t *testing.T) {
	m := newMachine()
	if m == nil {
		t.Skip("this runtime keeps no scheduling latencies (" + schedLatencies + ")")
	}
	const limit = 100 * time.Millisecond
	if m.behind(limit) {
		t.Fatal("behind on its first look, which has nothing to compare with")
	}

	pingPong(10_000)
	if m.behind(limit) {
		t.Error("behind while goroutines handed work to each other on idle cores")
	}

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for !stop.Load() {
				// Runs until the scheduler preempts it, every 10 ms.
			}
		})
	}
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()
	if !m.behind(limit) {
		t.Error("not behind while fifty goroutines shared one core without blocking")
	}
}

// pingPong passes a value between two goroutines n times.
func pingPong(n int) {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
		close(pong)
	}()
	for i := range n {
		ping <- i
		<-pong
	}
	close(ping)
	<-pong
}
