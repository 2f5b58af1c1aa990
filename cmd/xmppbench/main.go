// Command xmppbench loads an XMPP server: it logs in N sessions (SCRAM over
// STARTTLS, direct TLS or plain TCP, caching salted passwords as real
// clients do), then either holds them idle or makes them chat, and prints a
// JSON summary: logins/s, login latency, server RSS per session (with
// -pid), delivered messages/s and delivery latency percentiles.
//
// A login's time runs from when it was due (with -rate, its scheduled
// arrival, so time spent waiting for one of the -concurrency slots counts;
// without, the start of its TCP connect) to its bind result;
// login_connect_* is from the TCP connect alone. A message bounced with
// type='error' is counted in messages_bounced, never as delivered.
//
// -warm logs every user in once before measuring, so SCRAM logins are those
// of returning clients (cached salted password, no client PBKDF2); -mechanism
// PLAIN measures logins that cost the server a PBKDF2 against its stored
// SCRAM keys. With -pid the summary has the server's CPU per login, and
// -steps 5000,10000,19000 reports its RSS per idle session at each count.
//
// The chat scenario is open-loop by default: each session writes one
// message per -interval whatever the server does, stamped when it is
// built, so under overload the latency measured is mostly the time
// messages wait unread in socket buffers. -sm-window N makes it closed-loop,
// as a mobile client with XEP-0198 sends: every session enables stream
// management, requests an ack with each message and stops while N of its
// messages are unacknowledged. It then reports the achieved send rate,
// delivery latency (write → receipt), ack latency (write → the covering
// <a/>), and checks off every acknowledged message at its recipient
// (messages_lost_acked must be 0); bench/closed-loop.sh runs it.
//
//	xmppbench -addr 127.0.0.1:5222 -domain localhost -n 5000 -scenario chat
//	xmppbench -addr 127.0.0.1:5222 -domain localhost -n 5000 -scenario chat -sm-window 1 -interval 250ms
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xmppd/xmppd/client"
	"github.com/xmppd/xmppd/sasl"
	"github.com/xmppd/xmppd/wire"
)

type options struct {
	addr, domain, prefix, password, mode, mech, scenario string
	n, first, concurrency, pid                           int
	rate                                                 float64
	hold, interval, duration, settle                     time.Duration
	register, warm, presence, resume                     bool
	// tickets holds each user's TLS session cache (-resume).
	tickets      *ticketCaches
	steps, pprof string
	size         int
	// smWindow > 0 makes the chat closed-loop, as a mobile client with
	// XEP-0198 behaves: a sender stops while smWindow of its messages are
	// unacknowledged (see chatSM).
	smWindow int
	drain    time.Duration
}

// step is the server's memory once a number of sessions is logged in and
// has idled for -hold (-steps).
type step struct {
	Sessions      int     `json:"sessions"`
	RSSKiB        int     `json:"server_rss_kib"`
	RSSPerSessKiB float64 `json:"server_rss_per_session_kib"`
	// With -pprof: the server's Go accounting after a forced collection
	// (taken after the RSS), in bytes and in KiB per session over the
	// same figures before the first login.
	Go           *goMem    `json:"server_go,omitempty"`
	GoPerSessKiB *goMemKiB `json:"server_go_per_session_kib,omitempty"`
	// With -pprof and -settle: the RSS again, -settle after that
	// collection (the runtime returns the freed heap above its goal to
	// the OS in the background, once a collection has set the goal).
	RSSSettledKiB        int     `json:"server_rss_settled_kib,omitempty"`
	RSSSettledPerSessKiB float64 `json:"server_rss_settled_per_session_kib,omitempty"`
}

type summary struct {
	Scenario     string  `json:"scenario"`
	Sessions     int     `json:"sessions"`
	Failed       int     `json:"failed_logins"`
	LoginsPerSec float64 `json:"logins_per_s"`
	LoginP50ms   float64 `json:"login_p50_ms"`
	LoginP99ms   float64 `json:"login_p99_ms"`
	ConnectP50ms float64 `json:"login_connect_p50_ms"`
	ConnectP99ms float64 `json:"login_connect_p99_ms"`
	// Server CPU (user+system, from /proc with -pid) over the login phase,
	// divided by the logins that completed.
	ServerCPUPerLoginMs float64 `json:"server_cpu_per_login_ms,omitempty"`
	ServerCPULoginsS    float64 `json:"server_cpu_logins_s,omitempty"`
	RSSBeforeKiB        int     `json:"server_rss_before_kib,omitempty"`
	RSSAfterKiB         int     `json:"server_rss_after_kib,omitempty"`
	RSSPerSessKiB       float64 `json:"server_rss_per_session_kib,omitempty"`
	Sent                int64   `json:"messages_sent,omitempty"`
	Delivered           int64   `json:"messages_delivered,omitempty"`
	Bounced             int64   `json:"messages_bounced,omitempty"`
	DeliveredPerSec     float64 `json:"delivered_per_s,omitempty"`
	LatP50ms            float64 `json:"latency_p50_ms,omitempty"`
	LatP99ms            float64 `json:"latency_p99_ms,omitempty"`
	// Server RSS sampled every 250 ms while chatting: its peak, and the
	// peak minus the RSS before the logins, per session.
	RSSPeakKiB        int     `json:"server_rss_peak_kib,omitempty"`
	RSSPeakPerSessKiB float64 `json:"server_rss_peak_per_session_kib,omitempty"`
	// Closed-loop chat (-sm-window): the rate offered (sessions ÷
	// interval) and achieved by the senders, the messages the server
	// acknowledged, acknowledged ones that never reached their recipient
	// (lost) and messages received more than once, the ack latency
	// (write → the <a/> covering it), and the share of the sending time
	// the senders spent waiting for a full window to open.
	SMWindow        int     `json:"sm_window,omitempty"`
	OfferedPerSec   float64 `json:"offered_per_s,omitempty"`
	SentPerSec      float64 `json:"sent_per_s,omitempty"`
	Acked           int64   `json:"messages_acked,omitempty"`
	Lost            int64   `json:"messages_lost_acked"`
	Duplicates      int64   `json:"messages_duplicated"`
	AckP50ms        float64 `json:"ack_p50_ms,omitempty"`
	AckP99ms        float64 `json:"ack_p99_ms,omitempty"`
	WindowBlocked   float64 `json:"window_blocked_share,omitempty"`
	DrainedAllAcked bool    `json:"drained_all_acked,omitempty"`
	LoadAvg         string  `json:"load_avg,omitempty"` // /proc/loadavg at the end
	// With -resume: TLS handshakes (warm-up included) that resumed a session.
	TLSResumed int64  `json:"tls_resumed,omitempty"`
	Steps      []step `json:"steps,omitempty"`
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:5222", "server c2s address")
	flag.StringVar(&o.domain, "domain", "localhost", "XMPP domain")
	flag.StringVar(&o.prefix, "prefix", "user", "usernames are PREFIX<i>")
	flag.StringVar(&o.password, "password", "benchpass", "password of every user")
	flag.StringVar(&o.mode, "mode", "starttls", "starttls | tls | plain")
	flag.StringVar(&o.mech, "mechanism", "SCRAM-SHA-256", "SASL mechanism (SCRAM-SHA-256, SCRAM-SHA-1, SCRAM-SHA-512, their -PLUS, PLAIN)")
	flag.StringVar(&o.scenario, "scenario", "idle", "idle | chat | hibernate")
	flag.IntVar(&o.n, "n", 1000, "sessions")
	flag.IntVar(&o.first, "first", 1, "index of the first user")
	flag.IntVar(&o.concurrency, "concurrency", 64, "logins in flight at once")
	flag.Float64Var(&o.rate, "rate", 0, "login arrivals per second (0: as fast as concurrency allows)")
	flag.IntVar(&o.pid, "pid", 0, "server process id, to sample its RSS")
	flag.DurationVar(&o.hold, "hold", 5*time.Second, "idle: how long sessions stay after logging in")
	flag.DurationVar(&o.interval, "interval", time.Second, "chat: each session sends one message per interval")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "chat: how long sessions chat")
	flag.IntVar(&o.size, "size", 64, "chat: body bytes")
	flag.IntVar(&o.smWindow, "sm-window", 0, "chat: closed loop with XEP-0198: each sender requests an ack with every message and stops\n"+
		"sending while this many of its messages are unacknowledged (0: open loop, no stream management)")
	flag.DurationVar(&o.drain, "drain", 30*time.Second, "chat with -sm-window: after sending, how long to wait for the last acks and deliveries")
	flag.BoolVar(&o.register, "register", false, "create the users by in-band registration first")
	flag.BoolVar(&o.presence, "presence", false, "idle: each session sends its initial presence after binding, as clients do")
	flag.StringVar(&o.steps, "steps", "", "idle with -pid: comma-separated session counts (5000,10000,19000): log in up to each\n"+
		"in turn, idle -hold, and report the server's RSS per session at each (linearity)")
	flag.StringVar(&o.pprof, "pprof", "", "with -steps: base URL of the server's net/http/pprof (http://127.0.0.1:6060), to report\n"+
		"its Go memory accounting (stacks, heap) per session at each step besides the RSS")
	flag.DurationVar(&o.settle, "settle", 0, "with -steps and -pprof: read the RSS again this long after the collection the Go figures force")
	flag.BoolVar(&o.resume, "resume", false, "resume TLS sessions: each user keeps the session tickets the server gave it (with -warm, from\n"+
		"its warm-up login), as returning mobile clients do; logins then skip the certificate and key exchange")
	flag.BoolVar(&o.warm, "warm", false, "log every user in and out once before measuring, so that SCRAM logins use\n"+
		"the cached salted password (a returning client's login; without it each SCRAM login pays\n"+
		"the client's PBKDF2, as a first login does)")
	flag.Parse()
	if o.resume {
		o.tickets = &ticketCaches{m: make(map[int]tls.ClientSessionCache)}
	}
	s, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "xmppbench:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(s)
}

func (o options) config(i int) client.Config {
	c := client.Config{
		Addr: o.addr, Domain: o.domain, Username: o.prefix + strconv.Itoa(i), Password: o.password,
		Resource: "bench", Mechanism: o.mech,
		TLS: &tls.Config{ServerName: o.domain, InsecureSkipVerify: true}, //nolint:gosec // load tool against local servers
	}
	if o.tickets != nil {
		c.TLS.ClientSessionCache = o.tickets.of(i)
		c.TLS.VerifyConnection = o.tickets.count
	}
	switch o.mode {
	case "tls":
		c.Mode = client.DirectTLS
	case "plain":
		c.Mode = client.Plain
	default:
		c.Mode = client.StartTLS
	}
	return c
}

func rssKiB(pid int) int {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				v, _ := strconv.Atoi(f[1])
				return v
			}
		}
	}
	return 0
}

// cpuTicks returns the user+system CPU time of pid from /proc (0 without
// a pid).
func cpuTicks(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count from after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)  // utime, field 14
	st, _ := strconv.ParseInt(f[12], 10, 64) // stime, field 15
	return time.Duration(u+st) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTicks = 100

func percentile(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	i := int(float64(len(d)-1) * p)
	return float64(d[i].Microseconds()) / 1000
}

// login is one session's login: when it was due, when its TCP connect
// started and when its bind result came (c is nil if it failed).
type login struct {
	due, connect, done time.Time
	c                  *client.Client
}

// logins logs in o.n sessions, at most o.concurrency at once, arriving at
// o.rate per second if it is set.
func logins(o options, cache *sasl.SaltedPasswordCache) (ls []login, elapsed time.Duration, failed int) {
	ls = make([]login, o.n)
	var nfailed atomic.Int64
	sem := make(chan struct{}, o.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < o.n; i++ {
		var due time.Time
		if o.rate > 0 {
			due = start.Add(time.Duration(float64(i) / o.rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int, due time.Time) {
			defer wg.Done()
			defer func() { <-sem }()
			cfg := o.config(o.first + i)
			cfg.Cache = cache
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			t0 := time.Now()
			if due.IsZero() {
				due = t0
			}
			c, err := client.Dial(ctx, cfg)
			if err != nil {
				if nfailed.Add(1) <= 3 {
					fmt.Fprintf(os.Stderr, "login %s: %v\n", cfg.Username, err)
				}
				return
			}
			ls[i] = login{due: due, connect: t0, done: time.Now(), c: c}
		}(i, due)
	}
	wg.Wait()
	return ls, time.Since(start), int(nfailed.Load())
}

// warmUp logs every user in once and out again, filling cache with their
// salted passwords (SCRAM), as a client that logged in before has them.
func warmUp(o options, cache *sasl.SaltedPasswordCache) error {
	w := o
	w.rate = 0
	ls, _, failed := logins(w, cache)
	for _, l := range ls {
		if l.c != nil {
			l.c.Close()
		}
	}
	if failed > 0 {
		return fmt.Errorf("warm-up: %d of %d logins failed", failed, o.n)
	}
	return nil
}

// summarizeLogins fills the sessions count and the login percentiles.
func summarizeLogins(ls []login) *summary {
	var lat, connect []time.Duration
	for _, l := range ls {
		if l.c != nil {
			lat = append(lat, l.done.Sub(l.due))
			connect = append(connect, l.done.Sub(l.connect))
		}
	}
	sum := &summary{Sessions: len(lat)}
	sum.LoginP50ms, sum.LoginP99ms = percentile(lat, 0.5), percentile(lat, 0.99)
	sum.ConnectP50ms, sum.ConnectP99ms = percentile(connect, 0.5), percentile(connect, 0.99)
	return sum
}

func run(o options) (*summary, error) {
	if o.register {
		if err := registerAll(o); err != nil {
			return nil, err
		}
	}
	cache := sasl.NewSaltedPasswordCache(o.n + 16)
	if o.warm {
		if err := warmUp(o, cache); err != nil {
			return nil, err
		}
	}
	if o.steps != "" {
		return runSteps(o, cache)
	}
	rss0 := rssKiB(o.pid)
	cpu0 := cpuTicks(o.pid)
	ls, elapsed, failed := logins(o, cache)
	cpu := cpuTicks(o.pid) - cpu0
	sum := summarizeLogins(ls)
	sum.Scenario, sum.RSSBeforeKiB, sum.Failed = o.scenario, rss0, failed
	sum.LoginsPerSec = float64(sum.Sessions) / elapsed.Seconds()
	if o.pid != 0 && sum.Sessions > 0 {
		sum.ServerCPULoginsS = cpu.Seconds()
		sum.ServerCPUPerLoginMs = float64(cpu.Microseconds()) / 1000 / float64(sum.Sessions)
	}
	var ok []*client.Client
	for _, l := range ls {
		if l.c != nil {
			ok = append(ok, l.c)
		}
	}
	defer func() {
		for _, c := range ok {
			c.Close()
		}
	}()
	switch o.scenario {
	case "idle":
		if o.presence {
			for _, c := range ok {
				_ = c.Send("<presence/>")
			}
		}
		time.Sleep(o.hold)
	case "chat":
		stopRSS := sampleRSS(o.pid, &sum.RSSPeakKiB)
		if o.smWindow > 0 {
			if err := chatSM(o, ok, sum); err != nil {
				stopRSS()
				return nil, err
			}
		} else {
			chat(o, ok, sum)
		}
		stopRSS()
		if o.pid != 0 && sum.Sessions > 0 {
			sum.RSSPeakPerSessKiB = float64(sum.RSSPeakKiB-sum.RSSBeforeKiB) / float64(sum.Sessions)
		}
	case "hibernate":
		// Every session turns on XEP-0198 resumption, then its network
		// goes away without a close: the server keeps them all hibernated.
		for _, c := range ok {
			if _, err := c.EnableSM(30*time.Second, true); err != nil {
				return nil, err
			}
		}
		for _, c := range ok {
			_ = c.Abort()
		}
		ok = nil
		time.Sleep(o.hold)
	default:
		return nil, fmt.Errorf("unknown scenario %q", o.scenario)
	}
	sum.RSSAfterKiB = rssKiB(o.pid)
	if o.pid != 0 && sum.Sessions > 0 {
		sum.RSSPerSessKiB = float64(sum.RSSAfterKiB-sum.RSSBeforeKiB) / float64(sum.Sessions)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		sum.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if o.tickets != nil {
		sum.TLSResumed = o.tickets.resumed.Load()
	}
	return sum, nil
}

// runSteps logs sessions in up to each count of o.steps, idling o.hold
// after each, and reports the server's RSS per session at each step.
func runSteps(o options, cache *sasl.SaltedPasswordCache) (*summary, error) {
	rss0 := rssKiB(o.pid)
	sum := &summary{Scenario: "steps", RSSBeforeKiB: rss0}
	var mem0 goMem
	if o.pprof != "" {
		var err error
		if mem0, err = readGoMem(o.pprof); err != nil {
			return nil, err
		}
	}
	var all []*client.Client
	defer func() {
		for _, c := range all {
			c.Close()
		}
	}()
	done := 0
	for _, f := range strings.Split(o.steps, ",") {
		target, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || target <= done {
			return nil, fmt.Errorf("-steps: %q is not a count above %d", f, done)
		}
		so := o
		so.first, so.n = o.first+done, target-done
		ls, _, failed := logins(so, cache)
		sum.Failed += failed
		for _, l := range ls {
			if l.c != nil {
				all = append(all, l.c)
				if o.presence {
					_ = l.c.Send("<presence/>")
				}
			}
		}
		done = target
		time.Sleep(o.hold)
		rss := rssKiB(o.pid)
		st := step{Sessions: len(all), RSSKiB: rss}
		if len(all) > 0 {
			st.RSSPerSessKiB = float64(rss-rss0) / float64(len(all))
		}
		if o.pprof != "" {
			m, err := readGoMem(o.pprof)
			if err != nil {
				return nil, err
			}
			st.Go = &m
			if len(all) > 0 {
				k := m.perSession(mem0, len(all))
				st.GoPerSessKiB = &k
			}
			if o.settle > 0 {
				time.Sleep(o.settle)
				st.RSSSettledKiB = rssKiB(o.pid)
				if len(all) > 0 {
					st.RSSSettledPerSessKiB = float64(st.RSSSettledKiB-rss0) / float64(len(all))
				}
			}
		}
		sum.Steps = append(sum.Steps, st)
		line, _ := json.Marshal(st)
		fmt.Fprintf(os.Stderr, "step %d: %s\n", target, line)
	}
	sum.Sessions, sum.RSSAfterKiB = len(all), rssKiB(o.pid)
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		sum.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return sum, nil
}

// sampleRSS records the highest RSS of pid in *peak every 250 ms until
// the returned function is called (which waits for the sampler to stop).
func sampleRSS(pid int, peak *int) (stop func()) {
	if pid == 0 {
		return func() {}
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if r := rssKiB(pid); r > *peak {
				*peak = r
			}
			select {
			case <-t.C:
			case <-done:
				return
			}
		}
	}()
	return func() { close(done); <-exited }
}

func chat(o options, cs []*client.Client, sum *summary) {
	if len(cs) < 2 {
		return
	}
	for _, c := range cs {
		_ = c.Send("<presence/>")
	}
	time.Sleep(time.Second)
	var sent atomic.Int64
	var rec receipts
	stop := time.Now().Add(o.duration)
	var wg sync.WaitGroup
	pad := strings.Repeat("x", max(o.size-20, 0))
	for _, c := range cs {
		wg.Add(1)
		go func(c *client.Client) { // receiver
			defer wg.Done()
			rec.receive(c, stop.Add(2*time.Second))
		}(c)
	}
	start := time.Now()
	var swg sync.WaitGroup
	for i, c := range cs {
		swg.Add(1)
		go func(i int, c *client.Client) { // sender
			defer swg.Done()
			time.Sleep(time.Duration(rand.Int64N(int64(o.interval))))
			t := time.NewTicker(o.interval)
			defer t.Stop()
			for time.Now().Before(stop) {
				j := rand.IntN(len(cs) - 1)
				if j >= i {
					j++
				}
				to := cs[j].JID
				body := strconv.FormatInt(time.Now().UnixNano(), 10) + " " + pad
				if c.Send("<message type='chat' to='"+to+"'><body>"+body+"</body></message>") == nil {
					sent.Add(1)
				}
				<-t.C
			}
		}(i, c)
	}
	swg.Wait()
	elapsed := time.Since(start)
	wg.Wait()
	sum.Sent, sum.Delivered, sum.Bounced = sent.Load(), rec.delivered.Load(), rec.bounced.Load()
	sum.DeliveredPerSec = float64(sum.Delivered) / elapsed.Seconds()
	sum.LatP50ms, sum.LatP99ms = percentile(rec.lats, 0.5), percentile(rec.lats, 0.99)
}

// receipts counts the stamped messages the sessions received: delivered
// ones with their latency, and bounces (type='error', which carry the
// original body and its stamp back to the sender).
type receipts struct {
	delivered, bounced atomic.Int64
	mu                 sync.Mutex
	lats               []time.Duration
}

// receive reads c's stanzas until its stream ends or until.
func (r *receipts) receive(c *client.Client, until time.Time) {
	local := make([]time.Duration, 0, 64)
	deadline := time.NewTimer(time.Until(until))
	defer deadline.Stop()
loop:
	for {
		select {
		case st, ok := <-c.Incoming():
			if !ok {
				break loop
			}
			if st.Kind != wire.KindMessage {
				continue
			}
			ts, ok := stamp(st.Raw)
			switch {
			case !ok:
			case st.Type == "error":
				r.bounced.Add(1)
			default:
				local = append(local, time.Since(time.Unix(0, ts)))
				r.delivered.Add(1)
			}
		case <-deadline.C:
			break loop
		}
	}
	r.mu.Lock()
	r.lats = append(r.lats, local...)
	r.mu.Unlock()
}

// stamp finds the send time at the start of the body.
func stamp(raw []byte) (int64, bool) {
	i := bytes.Index(raw, []byte("<body>"))
	if i < 0 {
		return 0, false
	}
	rest := raw[i+len("<body>"):]
	j := bytes.IndexByte(rest, ' ')
	if j < 0 {
		return 0, false
	}
	ts, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return ts, err == nil
}

// registerAll creates the users by XEP-0077 (the server must allow it).
func registerAll(o options) error {
	sem := make(chan struct{}, o.concurrency)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for i := 0; i < o.n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			cfg := o.config(o.first + i)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := client.Register(ctx, cfg); err != nil && !strings.Contains(err.Error(), "conflict") {
				firstErr.CompareAndSwap(nil, err)
			}
		}(i)
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return fmt.Errorf("registration: %w", err)
	}
	return nil
}
