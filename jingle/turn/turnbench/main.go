// Command turnbench measures the embedded TURN server under relayed audio
// calls on this machine: N calls, each two allocations relaying to each
// other (as two clients behind symmetric NATs would), P packets/s of S
// bytes each way. It reports the TURN process's CPU (getrusage), packet
// loss, and one-way latency percentiles next to the same traffic sent
// directly over loopback UDP.
//
// The TURN server runs in a child process (this program with -serve), so
// its CPU is measured apart from the load generator's.
//
//	go run ./jingle/turn/turnbench -calls 500 -duration 20s
//
// Everything stays on 127.0.0.1.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/logging"
	pionturn "github.com/pion/turn/v4"

	"github.com/xmppd/xmppd/jingle/turn"
)

const secret = "turnbench-secret-0123456789abcdef"

var (
	calls    = flag.Int("calls", 500, "concurrent calls (two allocations each)")
	duration = flag.Duration("duration", 20*time.Second, "measured time of the relayed phase")
	direct   = flag.Duration("direct", 10*time.Second, "measured time of the direct-UDP baseline (0 = skip)")
	rate     = flag.Int("rate", 50, "packets per second each way")
	size     = flag.Int("size", 160, "payload bytes")
	serve    = flag.Bool("serve", false, "run the TURN server (child mode)")
	sockets  = flag.Int("sockets", 0, "UDP listening sockets of the server (0 = GOMAXPROCS)")
	profile  = flag.String("cpuprofile", "", "write the server's CPU profile of the measured window to this file")
	pion     = flag.Bool("pion", false, "use pion/turn's client for the load (heavier) instead of the lean one")
)

func main() {
	flag.Parse()
	if *serve {
		runServer()
		return
	}
	if *size < 16 {
		log.Fatal("-size must be at least 16")
	}
	runLoad()
}

// ---- child: the TURN server ----

type usage struct {
	UserSec, SysSec float64
	MaxRSSKiB       int64
	Stats           turn.Stats
}

func rusage() (user, sys float64, maxrss int64) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano()).Seconds(), time.Duration(ru.Stime.Nano()).Seconds(), ru.Maxrss
}

func runServer() {
	s, err := turn.NewServer(turn.Options{
		Listen:       "127.0.0.1:0",
		RelayAddress: netip.MustParseAddr("127.0.0.1"),
		MinPort:      20000, MaxPort: 29999, // below the client ports (32768-60999)
		Realm: "localhost", Secret: secret,
		MaxAllocationsPerUser:  10,
		BandwidthPerAllocation: 1000 * 1000,
		Allow:                  []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		UDPSockets:             *sockets,
		Log:                    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.UDPAddr())
	// Each line on stdin asks for a usage report; EOF ends the server.
	sc := bufio.NewScanner(os.Stdin)
	reports := 0
	for sc.Scan() {
		reports++
		if *profile != "" && reports == 1 {
			f, err := os.Create(*profile)
			if err != nil {
				log.Fatal(err)
			}
			_ = pprof.StartCPUProfile(f)
		}
		if *profile != "" && reports == 2 {
			pprof.StopCPUProfile()
		}
		u, sy, rss := rusage()
		b, _ := json.Marshal(usage{u, sy, rss, s.Stats()})
		fmt.Println(string(b))
	}
	s.Close()
}

// ---- parent: the load ----

type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func (c *child) usage() usage {
	fmt.Fprintln(c.in, "usage")
	if !c.out.Scan() {
		log.Fatal("server: no usage report")
	}
	var u usage
	if err := json.Unmarshal(c.out.Bytes(), &u); err != nil {
		log.Fatal(err)
	}
	return u
}

func startChild() (*child, string) {
	exe, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command(exe, "-serve", fmt.Sprintf("-sockets=%d", *sockets), "-cpuprofile="+*profile)
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	outp, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	sc := bufio.NewScanner(outp)
	if !sc.Scan() {
		log.Fatal("server did not start")
	}
	return &child{cmd, in, sc}, strings.TrimSpace(sc.Text())
}

// stream is one direction of a call.
type stream struct {
	send func([]byte) error
	recv func([]byte) (int, error)

	sent, got atomic.Int64
	mu        sync.Mutex
	lat       []time.Duration
}

var epoch = time.Now()

// measuring is set while samples count.
var measuring atomic.Bool

// pace sends the packets of streams on schedule: stream i sends at
// start + i*period/len + k*period. A few pacers serve all streams (one
// goroutine and timer per stream would cost the generator more than the
// server it measures); each wakes every millisecond and sends what is due.
func pace(ctx context.Context, wg *sync.WaitGroup, streams []*stream, first, step int, start time.Time) {
	defer wg.Done()
	period := time.Second / time.Duration(*rate)
	buf := make([]byte, *size)
	n := len(streams)
	seqs := make([]uint64, n)
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		el := time.Since(start)
		m := measuring.Load()
		for i := first; i < n; i += step {
			due := el - time.Duration(i)*period/time.Duration(n)
			if due < 0 {
				continue
			}
			for k := uint64(due/period) + 1; seqs[i] < k; {
				seqs[i]++
				s := streams[i]
				flag := uint64(0)
				if m {
					flag = 1 << 63
				}
				binary.BigEndian.PutUint64(buf, seqs[i]|flag)
				binary.BigEndian.PutUint64(buf[8:], uint64(time.Since(epoch)))
				if err := s.send(buf); err == nil && m {
					s.sent.Add(1)
				}
			}
		}
	}
}

func (s *stream) receiver() {
	buf := make([]byte, 2048)
	for {
		n, err := s.recv(buf)
		if err != nil {
			return
		}
		if n < 16 {
			continue
		}
		now := time.Since(epoch)
		if binary.BigEndian.Uint64(buf)&(1<<63) == 0 {
			continue // warm-up packet
		}
		d := now - time.Duration(binary.BigEndian.Uint64(buf[8:]))
		s.got.Add(1)
		s.mu.Lock()
		s.lat = append(s.lat, d)
		s.mu.Unlock()
	}
}

type result struct {
	sent, got           int64
	rcvbuf, backlog     int64 // kernel drops meanwhile, machine-wide
	p50, p90, p99, p999 time.Duration
	max                 time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("sent %d, received %d, loss %.3f%% (kernel: %d receive-buffer overflows, %d backlog drops), one-way latency p50 %v p90 %v p99 %v p99.9 %v max %v",
		r.sent, r.got, r.loss(), r.rcvbuf, r.backlog, r.p50.Round(time.Microsecond), r.p90.Round(time.Microsecond),
		r.p99.Round(time.Microsecond), r.p999.Round(time.Microsecond), r.max.Round(time.Microsecond))
}

// kernelDrops returns UDP receive-buffer overflows (/proc/net/snmp
// RcvbufErrors) and backlog drops (/proc/net/softnet_stat), machine-wide.
func kernelDrops() (rcvbuf, backlog int64) {
	b, _ := os.ReadFile("/proc/net/snmp")
	var head []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if head == nil {
			head = f
			continue
		}
		for i, h := range head {
			if h == "RcvbufErrors" && i < len(f) {
				rcvbuf, _ = strconv.ParseInt(f[i], 10, 64)
			}
		}
	}
	b, _ = os.ReadFile("/proc/net/softnet_stat")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			n, _ := strconv.ParseInt(f[1], 16, 64)
			backlog += n
		}
	}
	return rcvbuf, backlog
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func (r result) loss() float64 {
	if r.sent == 0 {
		return 0
	}
	return 100 * float64(r.sent-r.got) / float64(r.sent)
}

// run drives streams: warm-up, measured window, drain.
func run(streams []*stream, window time.Duration, mark func()) result {
	for _, s := range streams {
		go s.receiver()
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	start := time.Now()
	pacers := runtime.GOMAXPROCS(0)
	for i := 0; i < pacers; i++ {
		wg.Add(1)
		go pace(ctx, &wg, streams, i, pacers, start)
	}
	time.Sleep(2 * time.Second) // permissions, channel bindings, steady state
	if mark != nil {
		mark()
	}
	rb0, bl0 := kernelDrops()
	measuring.Store(true)
	time.Sleep(window)
	measuring.Store(false)
	rb1, bl1 := kernelDrops()
	if mark != nil {
		mark()
	}
	time.Sleep(time.Second) // stragglers of the window still count
	rb2, bl2 := kernelDrops()
	cancel()
	wg.Wait()
	time.Sleep(500 * time.Millisecond)
	var r result
	r.rcvbuf, r.backlog = rb2-rb0, bl2-bl0
	_, _ = rb1, bl1
	var all []time.Duration
	for _, s := range streams {
		r.sent += s.sent.Load()
		r.got += s.got.Load()
		s.mu.Lock()
		all = append(all, s.lat...)
		s.mu.Unlock()
	}
	slices.Sort(all)
	if len(all) > 0 {
		r.p50 = all[len(all)/2]
		r.p90 = all[len(all)*90/100]
		r.p99 = all[len(all)*99/100]
		r.p999 = all[len(all)*999/1000]
		r.max = all[len(all)-1]
	}
	return r
}

func udp() *net.UDPConn {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		log.Fatal(err)
	}
	_ = c.SetReadBuffer(4 << 20)
	return c
}

func directStreams(n int) ([]*stream, func()) {
	var streams []*stream
	var conns []*net.UDPConn
	for i := 0; i < n; i++ {
		a, b := udp(), udp()
		conns = append(conns, a, b)
		mk := func(from, to *net.UDPConn) *stream {
			dst := to.LocalAddr().(*net.UDPAddr).AddrPort()
			return &stream{
				send: func(p []byte) error { _, err := from.WriteToUDPAddrPort(p, dst); return err },
				recv: func(p []byte) (int, error) { n, _, err := to.ReadFromUDPAddrPort(p); return n, err },
			}
		}
		streams = append(streams, mk(a, b), mk(b, a))
	}
	return streams, func() {
		for _, c := range conns {
			c.Close()
		}
	}
}

type quiet struct{}

func (quiet) NewLogger(string) logging.LeveledLogger {
	return logging.NewDefaultLeveledLoggerForScope("", logging.LogLevelError, os.Stderr)
}

func allocation(server string, user string) (*pionturn.Client, net.PacketConn) {
	u, p, _ := turn.Credentials(secret, user, time.Hour)
	conn := udp()
	c, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: server, TURNServerAddr: server, Conn: conn,
		Username: u, Password: p, Realm: "localhost", LoggerFactory: quiet{},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		log.Fatal(err)
	}
	var relay net.PacketConn
	for try := 0; ; try++ {
		if relay, err = c.Allocate(); err == nil {
			break
		}
		if try == 3 {
			log.Fatalf("allocate %s: %v", user, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return c, relay
}

func leanStreams(server string, n int) ([]*stream, func()) {
	srv := netip.MustParseAddrPort(server)
	type call struct{ a, b *lean }
	cs := make([]call, n)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range cs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a, err := dialLean(srv, fmt.Sprintf("caller%d@localhost", i))
			if err != nil {
				log.Fatalf("allocate: %v", err)
			}
			b, err := dialLean(srv, fmt.Sprintf("callee%d@localhost", i))
			if err != nil {
				log.Fatalf("allocate: %v", err)
			}
			// Each side binds a channel to the other's relayed address.
			if err := a.bind(b.relay, 0x4000); err != nil {
				log.Fatalf("channel bind: %v", err)
			}
			if err := b.bind(a.relay, 0x4000); err != nil {
				log.Fatalf("channel bind: %v", err)
			}
			cs[i] = call{a, b}
		}()
	}
	wg.Wait()
	var streams []*stream
	for _, c := range cs {
		mk := func(from, to *lean) *stream {
			frame := make([]byte, 4+*size)
			return &stream{
				send: func(p []byte) error { copy(frame[4:], p); return from.send(frame) },
				recv: to.recv,
			}
		}
		streams = append(streams, mk(c.a, c.b), mk(c.b, c.a))
	}
	return streams, func() {
		for _, c := range cs {
			c.a.conn.Close()
			c.b.conn.Close()
		}
	}
}

func relayedStreams(server string, n int) ([]*stream, func()) {
	type call struct {
		ca, cb *pionturn.Client
		ra, rb net.PacketConn
	}
	cs := make([]call, n)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range cs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ca, ra := allocation(server, fmt.Sprintf("caller%d@localhost", i))
			cb, rb := allocation(server, fmt.Sprintf("callee%d@localhost", i))
			cs[i] = call{ca, cb, ra, rb}
		}()
	}
	wg.Wait()
	var streams []*stream
	for _, c := range cs {
		mk := func(from, to net.PacketConn) *stream {
			dst := to.LocalAddr() // the peer's relayed address
			return &stream{
				send: func(p []byte) error { _, err := from.WriteTo(p, dst); return err },
				recv: func(p []byte) (int, error) { n, _, err := to.ReadFrom(p); return n, err },
			}
		}
		streams = append(streams, mk(c.ra, c.rb), mk(c.rb, c.ra))
	}
	return streams, func() {
		for _, c := range cs {
			c.ra.Close()
			c.rb.Close()
			c.ca.Close()
			c.cb.Close()
		}
	}
}

func selfCPU() float64 {
	u, s, _ := rusage()
	return u + s
}

func runLoad() {
	fmt.Printf("turnbench: %d calls, %d packets/s of %d bytes each way, GOMAXPROCS %d, %d CPUs, load average %s\n",
		*calls, *rate, *size, runtime.GOMAXPROCS(0), runtime.NumCPU(), loadavg())
	defer func() { fmt.Printf("load average at the end: %s\n", loadavg()) }()
	if *direct > 0 {
		streams, closeAll := directStreams(*calls)
		c0, t0 := selfCPU(), time.Now()
		r := run(streams, *direct, nil)
		cpu := (selfCPU() - c0) / time.Since(t0).Seconds()
		closeAll()
		fmt.Printf("direct UDP:  %d streams, %v (generator CPU %.0f%%)\n", len(streams), r, 100*cpu)
	}

	ch, addr := startChild()
	t0 := time.Now()
	newStreams := leanStreams
	if *pion {
		newStreams = relayedStreams
	}
	streams, closeAll := newStreams(addr, *calls)
	fmt.Printf("allocations: %d in %v\n", 2**calls, time.Since(t0).Round(time.Millisecond))
	var u0, u1 usage
	var w0, w1 time.Time
	var g0, g1 float64
	r := run(streams, *duration, func() {
		if w0.IsZero() {
			u0, w0, g0 = ch.usage(), time.Now(), selfCPU()
		} else {
			u1, w1, g1 = ch.usage(), time.Now(), selfCPU()
		}
	})
	wall := w1.Sub(w0).Seconds()
	cpu := (u1.UserSec + u1.SysSec - u0.UserSec - u0.SysSec) / wall
	st := u1.Stats
	fmt.Printf("relayed:     %d streams, %v\n", len(streams), r)
	fmt.Printf("TURN server: CPU %.1f%% of one core (user %.1fs sys %.1fs over %.1fs), max RSS %d MiB; load generator CPU %.0f%%\n",
		100*cpu, u1.UserSec-u0.UserSec, u1.SysSec-u0.SysSec, wall, u1.MaxRSSKiB/1024, 100*(g1-g0)/wall)
	pps := float64(st.PacketsToPeers-u0.Stats.PacketsToPeers+st.PacketsFromPeers-u0.Stats.PacketsFromPeers) / wall
	fmt.Printf("TURN stats:  allocations %d, relayed %.0f packets/s (to peers + from peers), dropped %d/%d, unpermitted %d\n",
		st.Allocations, pps, st.DroppedToPeers, st.DroppedFromPeers, st.Unpermitted)
	closeAll()
	ch.in.Close()
	_ = ch.cmd.Wait()
}
