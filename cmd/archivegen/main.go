// Command archivegen fills the message archive of an xmppd data directory
// with a large, realistic set of messages (see internal/archivegen), for
// benchmarks and capacity tests of the archive. The server must not be
// running on that data directory.
//
//	archivegen -data /tmp/bigarchive -n 10000000
//
// It creates the missing accounts (user1 … user5000@bench.localhost by
// default, the perf harness's names), appends the messages in batches of
// 10,000 (one transaction each) and prints, per million rows, the insert
// rate of that million and the database size per row. The fill state is
// kept beside the database (FILE.archivegen.json): run it again with a
// larger -n to grow the same archive.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"time"

	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/internal/archivegen"
	"github.com/xmppd/xmppd/server"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("archivegen", flag.ContinueOnError)
	fl.SetOutput(stderr)
	cfgPath := fl.String("config", "", "configuration file (default: the embedded default)")
	dataDir := fl.String("data", "", "data directory (default: ./"+conf.DefaultDataDir+")")
	rows := fl.Int64("n", 10_000_000, "rows the archive should hold when done")
	span := fl.Duration("span", 180*24*time.Hour, "time the stamps of -plan rows spread over, from SPAN ago")
	plan := fl.Int64("plan", 0, "rows the archive is planned to grow to in later runs (default -n): a new archive's stamps are -span/-plan apart")
	accounts := fl.Int("accounts", 5000, "accounts (PREFIX1 … PREFIXn)")
	prefix := fl.String("prefix", "user", "local part prefix of the accounts")
	domain := fl.String("domain", "bench.localhost", "domain of the accounts")
	seed := fl.Uint64("seed", 1, "random seed")
	batch := fl.Int("batch", 10000, "rows per Append (one transaction); a resumed fill keeps the first one")
	every := fl.Int64("report", 1_000_000, "print a line every this many rows")
	cpuProfile := fl.String("cpuprofile", "", "write a CPU profile of the fill to this file")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	var cfg *conf.Config
	var err error
	if *cfgPath == "" {
		cfg = conf.Default(*dataDir)
	} else if cfg, err = conf.Load(*cfgPath, *dataDir); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	dbPath := string(cfg.Storage.Path)

	if *plan < *rows {
		*plan = *rows
	}
	st := archivegen.NewState(*plan, *span)
	st.Accounts, st.Prefix, st.Domain, st.Seed, st.Batch = *accounts, *prefix, *domain, *seed, *batch
	if old, ok, err := archivegen.LoadState(dbPath); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	} else if ok {
		st = old
		fmt.Fprintf(stdout, "resuming at %d rows (shape from %s)\n", st.Rows, archivegen.StatePath(dbPath))
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	store, err := server.OpenStore(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "storage:", err)
		return 1
	}
	defer store.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	save := func() error { return archivegen.SaveState(dbPath, st) }
	if err := archivegen.CreateAccounts(ctx, store, &st); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := save(); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	first := st.Rows
	last, lastT, lastCPU := st.Rows, time.Duration(0), processCPU()
	var saveErr error
	err = archivegen.Fill(ctx, store, &st, *rows, func(p archivegen.Progress) {
		if saveErr == nil {
			saveErr = save()
		}
		if p.Rows-last >= *every || p.Rows == *rows {
			size := fileSize(dbPath) + fileSize(dbPath+"-wal")
			cpu := processCPU()
			fmt.Fprintf(stdout, "%d rows\t%.0f rows/s (last %d)\t%.1f cpu-µs/row\t%.0f rows/s this run\t%d bytes on disk\t%.0f bytes/row\n",
				p.Rows, float64(p.Rows-last)/(p.Elapsed-lastT).Seconds(), p.Rows-last,
				float64((cpu-lastCPU).Microseconds())/float64(p.Rows-last),
				float64(p.Rows-first)/p.Elapsed.Seconds(), size, float64(size)/float64(p.Rows))
			last, lastT, lastCPU = p.Rows, p.Elapsed, cpu
		}
	})
	if err == nil {
		err = saveErr
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
