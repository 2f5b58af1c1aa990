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
	blockpr  = flag.String("blockprofile", "", "write the server's goroutine blocking profile to this file")
	mutexpr  = flag.String("mutexprofile", "", "write the server's mutex contention profile to this file")
	rcvbuf   = flag.Int("receive-buffer", 0, "the server's receive-buffer (bytes, 0 = its default)")
	sndbuf   = flag.Int("send-buffer", 0, "the server's send-buffer (bytes, 0 = its default)")
	pion     = flag.Bool("pion", false, "use pion/turn's client for the load (heavier) instead of the lean one")

	extAddr    = flag.String("external", "", "also load this external TURN server (host:port, UDP; e.g. coturn with use-auth-secret)")
	extSecret  = flag.String("external-secret", "", "the external server's TURN REST API secret (coturn's static-auth-secret)")
	extName    = flag.String("external-name", "coturn", "the external server's name in the output")
	extPID     = flag.Int("external-pid", 0, "the external server's process, for its CPU (/proc/PID/stat)")
	extPIDFile = flag.String("external-pidfile", "", "file holding -external-pid")
	noXMPPD    = flag.Bool("no-xmppd", false, "skip the embedded server (load only -external)")
	rounds     = flag.Int("rounds", 1, "rounds, each running direct, xmppd and the external server in turn")
	sweep      = flag.String("sweep", "", "call counts (\"100,250,500\"): each server runs them in turn until its loss exceeds -max-loss")
	maxLoss    = flag.Float64("max-loss", 0.1, "packet loss (%) a -sweep step may have")
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
		MinPort:      20000, MaxPort: 24999, // below the client ports (32768-60999), apart from coturn.sh's 25000-25999
		Realm: "localhost", Secret: secret,
		MaxAllocationsPerUser:  10,
		BandwidthPerAllocation: 1000 * 1000,
		Allow:                  []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		UDPSockets:             *sockets,
		ReceiveBuffer:          *rcvbuf,
		SendBuffer:             *sndbuf,
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
		if reports == 1 {
			if *blockpr != "" {
				runtime.SetBlockProfileRate(int(10 * time.Microsecond))
			}
			if *mutexpr != "" {
				runtime.SetMutexProfileFraction(10)
			}
		}
		if *profile != "" && reports == 2 {
			pprof.StopCPUProfile()
		}
		if reports == 2 {
			for name, file := range map[string]string{"block": *blockpr, "mutex": *mutexpr} {
				if file == "" {
					continue
				}
				f, err := os.Create(file)
				if err != nil {
					log.Fatal(err)
				}
				_ = pprof.Lookup(name).WriteTo(f, 0)
				f.Close()
			}
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
	cmd := exec.Command(exe, "-serve", fmt.Sprintf("-sockets=%d", *sockets), "-cpuprofile="+*profile,
		"-blockprofile="+*blockpr, "-mutexprofile="+*mutexpr,
		fmt.Sprintf("-receive-buffer=%d", *rcvbuf), fmt.Sprintf("-send-buffer=%d", *sndbuf))
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
	// recv returns the next payload and when the kernel queued it on the
	// receiving socket (ns since the Unix epoch; 0 = unknown).
	recv func([]byte) (n int, kernel int64, err error)

	sent, got atomic.Int64
	mu        sync.Mutex
	lat       []time.Duration // send → kernel receive queue (application receive when unknown)
	appLat    []time.Duration // send → read by the receiving goroutine
}

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
				binary.BigEndian.PutUint64(buf[8:], uint64(time.Now().UnixNano()))
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
		n, kernel, err := s.recv(buf)
		if err != nil {
			return
		}
		if n < 16 {
			continue
		}
		now := time.Now().UnixNano()
		if binary.BigEndian.Uint64(buf)&(1<<63) == 0 {
			continue // warm-up packet
		}
		sent := int64(binary.BigEndian.Uint64(buf[8:]))
		if kernel == 0 {
			kernel = now
		}
		s.got.Add(1)
		s.mu.Lock()
		s.lat = append(s.lat, time.Duration(kernel-sent))
		s.appLat = append(s.appLat, time.Duration(now-sent))
		s.mu.Unlock()
	}
}

type result struct {
	sent, got           int64
	rcvbuf, backlog     int64 // kernel drops meanwhile, machine-wide
	p50, p90, p99, p999 time.Duration
	max                 time.Duration
	appP50, appP99      time.Duration // as read by the generator's goroutines
}

func (r result) String() string {
	return fmt.Sprintf("sent %d, received %d, loss %.3f%% (kernel: %d receive-buffer overflows, %d backlog drops), one-way latency p50 %v p90 %v p99 %v p99.9 %v max %v (read by the generator: p50 %v p99 %v)",
		r.sent, r.got, r.loss(), r.rcvbuf, r.backlog, r.p50.Round(time.Microsecond), r.p90.Round(time.Microsecond),
		r.p99.Round(time.Microsecond), r.p999.Round(time.Microsecond), r.max.Round(time.Microsecond),
		r.appP50.Round(time.Microsecond), r.appP99.Round(time.Microsecond))
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
	var all, app []time.Duration
	for _, s := range streams {
		r.sent += s.sent.Load()
		r.got += s.got.Load()
		s.mu.Lock()
		all = append(all, s.lat...)
		app = append(app, s.appLat...)
		s.mu.Unlock()
	}
	slices.Sort(app)
	if len(app) > 0 {
		r.appP50, r.appP99 = app[len(app)/2], app[len(app)*99/100]
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
	timestamps(c)
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
				recv: recvStamped(to),
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

func allocation(server, secret, user string) (*pionturn.Client, net.PacketConn) {
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

func leanStreams(srv netip.AddrPort, secret string, n int) ([]*stream, func()) {
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
			a, err := dialLean(srv, secret, fmt.Sprintf("caller%d@localhost", i))
			if err != nil {
				log.Fatalf("allocate: %v", err)
			}
			b, err := dialLean(srv, secret, fmt.Sprintf("callee%d@localhost", i))
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
			c.a.release()
			c.b.release()
		}
	}
}

func relayedStreams(server, secret string, n int) ([]*stream, func()) {
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
			ca, ra := allocation(server, secret, fmt.Sprintf("caller%d@localhost", i))
			cb, rb := allocation(server, secret, fmt.Sprintf("callee%d@localhost", i))
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
				recv: func(p []byte) (int, int64, error) { n, _, err := to.ReadFrom(p); return n, 0, err },
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

// target is a TURN server under load: this repository's (a child process)
// or an external one (coturn) with TURN REST API credentials.
type target struct {
	name, addr, secret string
	// sample returns the server's CPU seconds so far, and a line of server
	// statistics since the previous sample ("" when unknown).
	sample func() (cpu float64, stats string)
	close  func()
}

func xmppdTarget() *target {
	ch, addr := startChild()
	var prev turn.Stats
	return &target{
		name: "xmppd", addr: addr, secret: secret,
		sample: func() (float64, string) {
			u := ch.usage()
			st := u.Stats
			line := fmt.Sprintf("relayed %d packets (to peers + from peers), dropped %d/%d, unpermitted %d, max RSS %d MiB",
				st.PacketsToPeers-prev.PacketsToPeers+st.PacketsFromPeers-prev.PacketsFromPeers,
				st.DroppedToPeers-prev.DroppedToPeers, st.DroppedFromPeers-prev.DroppedFromPeers,
				st.Unpermitted-prev.Unpermitted, u.MaxRSSKiB/1024)
			prev = st
			return u.UserSec + u.SysSec, line
		},
		close: func() { ch.in.Close(); _ = ch.cmd.Wait() },
	}
}

// externalTarget is the server at *extAddr; its CPU is read from
// /proc/PID/stat (all threads) when *extPID is given.
func externalTarget() *target {
	pid := *extPID
	if f := *extPIDFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			log.Fatal(err)
		}
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	return &target{
		name: *extName, addr: *extAddr, secret: *extSecret,
		sample: func() (float64, string) {
			if pid == 0 {
				return 0, ""
			}
			cpu, err := procCPU(pid)
			if err != nil {
				log.Fatalf("%s: %v", *extName, err)
			}
			return cpu, ""
		},
		close: func() {},
	}
}

// procCPU is the user+system CPU seconds of process pid (/proc/PID/stat).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields count after ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseFloat(f[11], 64) // field 14: utime
	st, _ := strconv.ParseFloat(f[12], 64) // field 15: stime
	return (ut + st) / clockTicks, nil
}

const clockTicks = 100 // sysconf(_SC_CLK_TCK) on Linux

// outcome is one measured run.
type outcome struct {
	name  string
	calls int
	r     result
	cpu   float64 // server CPU, fraction of one core (direct: none)
	gen   float64 // load generator CPU
}

func (o outcome) ok() bool { return o.r.sent > 0 && o.r.loss() <= *maxLoss }

func measureDirect(n int) outcome {
	streams, closeAll := directStreams(n)
	defer closeAll()
	var c0, c1 float64
	var t0, t1 time.Time
	r := run(streams, *direct, func() {
		if t0.IsZero() {
			c0, t0 = selfCPU(), time.Now()
		} else {
			c1, t1 = selfCPU(), time.Now()
		}
	})
	o := outcome{name: "direct", calls: n, r: r, gen: (c1 - c0) / t1.Sub(t0).Seconds()}
	fmt.Printf("direct UDP:  %d streams, %v (generator CPU %.0f%%)\n", len(streams), r, 100*o.gen)
	return o
}

func measureTURN(t *target, n int) outcome {
	srv, err := netip.ParseAddrPort(t.addr)
	if err != nil {
		log.Fatalf("%s: %v", t.name, err)
	}
	t0 := time.Now()
	var streams []*stream
	var closeAll func()
	if *pion {
		streams, closeAll = relayedStreams(t.addr, t.secret, n)
	} else {
		streams, closeAll = leanStreams(srv, t.secret, n)
	}
	defer closeAll()
	fmt.Printf("%s: %d allocations in %v\n", t.name, 2*n, time.Since(t0).Round(time.Millisecond))
	var s0, s1, g0, g1 float64
	var w0, w1 time.Time
	var stats string
	r := run(streams, *duration, func() {
		if w0.IsZero() {
			s0, _ = t.sample()
			w0, g0 = time.Now(), selfCPU()
		} else {
			s1, stats = t.sample()
			w1, g1 = time.Now(), selfCPU()
		}
	})
	wall := w1.Sub(w0).Seconds()
	o := outcome{name: t.name, calls: n, r: r, cpu: (s1 - s0) / wall, gen: (g1 - g0) / wall}
	fmt.Printf("%-12s %d streams, %v\n", t.name+":", len(streams), r)
	fmt.Printf("%-12s server CPU %.1f%% of one core over %.1fs; load generator CPU %.0f%%\n", "", 100*o.cpu, wall, 100*o.gen)
	if stats != "" {
		fmt.Printf("%-12s %s\n", "", stats)
	}
	return o
}

// summary prints each server's figures next to direct UDP's of the same
// round: loss, added latency (p50, p99 minus direct's), server CPU.
func summary(direct outcome, rs []outcome) {
	for _, o := range rs {
		if direct.r.sent == 0 {
			fmt.Printf("summary %-8s %5d calls: loss %.3f%%, p50 %v p99 %v, server CPU %.1f%%\n", o.name, o.calls,
				o.r.loss(), o.r.p50.Round(time.Microsecond), o.r.p99.Round(time.Microsecond), 100*o.cpu)
			continue
		}
		fmt.Printf("summary %-8s %5d calls: loss %.3f%%, added latency p50 %v p99 %v (direct p50 %v p99 %v), server CPU %.1f%%\n",
			o.name, o.calls, o.r.loss(), (o.r.p50 - direct.r.p50).Round(time.Microsecond), (o.r.p99 - direct.r.p99).Round(time.Microsecond),
			direct.r.p50.Round(time.Microsecond), direct.r.p99.Round(time.Microsecond), 100*o.cpu)
	}
}

func targets() []func() *target {
	var ts []func() *target
	if !*noXMPPD {
		ts = append(ts, xmppdTarget)
	}
	if *extAddr != "" {
		ts = append(ts, externalTarget)
	}
	return ts
}

func runLoad() {
	fmt.Printf("turnbench: %d calls, %d packets/s of %d bytes each way, GOMAXPROCS %d, %d CPUs, load average %s\n",
		*calls, *rate, *size, runtime.GOMAXPROCS(0), runtime.NumCPU(), loadavg())
	defer func() { fmt.Printf("load average at the end: %s\n", loadavg()) }()
	if *sweep != "" {
		runSweep()
		return
	}
	// Rounds alternate the servers (direct, xmppd, external, direct, …) so
	// that a noisy machine weighs on all of them alike.
	for round := 1; round <= *rounds; round++ {
		if *rounds > 1 {
			fmt.Printf("-- round %d of %d\n", round, *rounds)
		}
		var d outcome
		if *direct > 0 {
			d = measureDirect(*calls)
		}
		var rs []outcome
		for _, mk := range targets() {
			t := mk()
			rs = append(rs, measureTURN(t, *calls))
			t.close()
		}
		summary(d, rs)
	}
}

// runSweep runs each server at increasing call counts until its loss
// exceeds -max-loss, and reports the largest count within it.
func runSweep() {
	var counts []int
	for _, f := range strings.Split(*sweep, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			log.Fatalf("-sweep: %q is not a call count", f)
		}
		counts = append(counts, n)
	}
	mks := targets()
	best := make([]int, len(mks))
	names := make([]string, len(mks))
	failed := make([]bool, len(mks))
	for _, n := range counts {
		fmt.Printf("-- %d calls\n", n)
		var d outcome
		if *direct > 0 {
			d = measureDirect(n)
		}
		var rs []outcome
		for i, mk := range mks {
			if failed[i] {
				continue
			}
			t := mk()
			names[i] = t.name
			o := measureTURN(t, n)
			t.close()
			rs = append(rs, o)
			if o.ok() {
				best[i] = n
			} else {
				failed[i] = true
			}
		}
		summary(d, rs)
		if !slices.Contains(failed, false) {
			break
		}
	}
	for i := range mks {
		fmt.Printf("sweep %-8s largest call count with loss ≤ %.2f%%: %d\n", names[i], *maxLoss, best[i])
	}
}
