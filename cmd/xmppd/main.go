// Command xmppd is the XMPP server and its administration tool.
//
//	xmppd [-config FILE] [-data DIR]                 serve
//	xmppd user add|passwd|del|list [flags] JID [PASSWORD]
//	xmppd config check -config FILE
//	xmppd config example
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/conf"
	"github.com/xmppd/xmppd/sasl"
	"github.com/xmppd/xmppd/server"
	"github.com/xmppd/xmppd/storage"
)

const usage = `usage:
  xmppd [-config FILE] [-data DIR]              run the server
  xmppd user add|passwd|del|list [-config FILE | -data DIR] [JID [PASSWORD]]
  xmppd config check -config FILE              validate a configuration file
  xmppd config example                         print a commented example configuration
  xmppd calls list [-config FILE | -data DIR] [-n N] [JID]   call records, newest first
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "user":
			return userCmd(args[1:], stdin, stdout, stderr)
		case "config":
			return configCmd(args[1:], stdout, stderr)
		case "calls":
			return callsCmd(args[1:], stdout, stderr)
		case "serve":
			args = args[1:]
		case "help", "-h", "-help", "--help":
			fmt.Fprint(stdout, usage)
			return 0
		}
	}
	return serve(args, stderr)
}

// commonFlags are the -config and -data flags every subcommand takes.
func commonFlags(name string, stderr io.Writer) (*flag.FlagSet, *string, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (default: the embedded default)")
	dataDir := fs.String("data", "", "data directory (default: ./"+conf.DefaultDataDir+")")
	return fs, cfgPath, dataDir
}

func loadConfig(path, dataDir string) (*conf.Config, error) {
	if path == "" {
		return conf.Default(dataDir), nil
	}
	return conf.Load(path, dataDir)
}

func serve(args []string, stderr io.Writer) int {
	fs, cfgPath, dataDir := commonFlags("xmppd", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "xmppd: unexpected argument %q\n%s", fs.Arg(0), usage)
		return 2
	}
	cfg, err := loadConfig(*cfgPath, *dataDir)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log, err := server.NewLogger(cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "xmppd: log:", err)
		return 1
	}
	srv, err := server.New(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if err := srv.Start(); err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	log.Info("xmppd started", "hosts", strings.Join(cfg.Hosts, ","), "data", cfg.DataDir)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				if err := srv.ReloadCertificates(); err != nil {
					log.Error("reloading certificates failed", "err", err)
				} else {
					log.Info("certificates reloaded")
				}
				continue
			}
			log.Info("shutting down", "signal", sig.String())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := srv.Shutdown(ctx)
			cancel()
			if err != nil {
				log.Error("shutdown", "err", err)
				return 1
			}
			log.Info("stopped")
			return 0
		case err := <-srv.Errors():
			log.Error("listener failed", "err", err)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = srv.Shutdown(ctx)
			cancel()
			return 1
		}
	}
}

func configCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "example":
		_, _ = stdout.Write(conf.Example())
		return 0
	case "check":
		fs, cfgPath, dataDir := commonFlags("config check", stderr)
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if *cfgPath == "" && fs.NArg() == 1 {
			*cfgPath = fs.Arg(0)
		}
		if *cfgPath == "" {
			fmt.Fprintln(stderr, "config check: -config FILE is required")
			return 2
		}
		cfg, err := conf.Load(*cfgPath, *dataDir)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		for _, w := range cfg.Warnings {
			fmt.Fprintln(stderr, "warning:", w)
		}
		fmt.Fprintf(stdout, "%s: OK (%d host(s), %d c2s listener(s), %d HTTP listener(s))\n",
			*cfgPath, len(cfg.Hosts), len(cfg.Listeners.C2S), len(cfg.Listeners.HTTP))
		return 0
	}
	fmt.Fprint(stderr, usage)
	return 2
}

func userCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	verb := args[0]
	fs, cfgPath, dataDir := commonFlags("user "+verb, stderr)
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	cfg, err := loadConfig(*cfgPath, *dataDir)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	store, err := server.OpenStore(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "storage:", err)
		return 1
	}
	defer store.Close()
	ctx := context.Background()
	accounts := store.Accounts()

	if verb == "list" {
		domain := ""
		if fs.NArg() > 0 {
			domain = fs.Arg(0)
		}
		list, err := accounts.List(ctx, domain)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		for _, j := range list {
			fmt.Fprintln(stdout, j)
		}
		return 0
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fmt.Fprintf(stderr, "user %s: need JID [PASSWORD]\n", verb)
		return 2
	}
	j, err := jid.Parse(fs.Arg(0))
	if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
		fmt.Fprintf(stderr, "user %s: %q is not a bare JID user@domain\n", verb, fs.Arg(0))
		return 2
	}
	if !cfg.IsLocal(j.Domainpart()) {
		fmt.Fprintf(stderr, "user %s: %s is not a host of this server (hosts: %s)\n", verb, j.Domainpart(), strings.Join(cfg.Hosts, ", "))
		return 1
	}
	bare := j.Bare().String()
	switch verb {
	case "add", "passwd":
		pw := ""
		if fs.NArg() == 2 {
			pw = fs.Arg(1)
		} else {
			line, err := bufio.NewReader(stdin).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				fmt.Fprintln(stderr, err)
				return 1
			}
			pw = strings.TrimRight(line, "\r\n")
		}
		if pw == "" {
			fmt.Fprintln(stderr, "user: empty password")
			return 2
		}
		keys, err := sasl.NewKeys(pw, cfg.Auth.SCRAMIterations)
		if err != nil {
			fmt.Fprintln(stderr, "user: password:", err)
			return 1
		}
		if verb == "add" {
			err = accounts.Create(ctx, storage.Account{JID: bare, Keys: keys, Created: time.Now().UTC()})
			if errors.Is(err, storage.ErrExists) {
				fmt.Fprintf(stderr, "user add: %s already exists\n", bare)
				return 1
			}
		} else {
			err = accounts.SetKeys(ctx, bare, keys)
		}
		if errors.Is(err, storage.ErrNotFound) {
			fmt.Fprintf(stderr, "user %s: %s does not exist\n", verb, bare)
			return 1
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	case "del":
		if err := accounts.Delete(ctx, bare); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				fmt.Fprintf(stderr, "user del: %s does not exist\n", bare)
			} else {
				fmt.Fprintln(stderr, err)
			}
			return 1
		}
	default:
		fmt.Fprint(stderr, usage)
		return 2
	}
	fmt.Fprintf(stdout, "%s: %s\n", verb, bare)
	return 0
}

func callsCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "list" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	fs, cfgPath, dataDir := commonFlags("calls list", stderr)
	n := fs.Int("n", 50, "at most this many records (0: all)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	cfg, err := loadConfig(*cfgPath, *dataDir)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	who := ""
	if fs.NArg() > 0 {
		j, err := jid.Parse(fs.Arg(0))
		if err != nil {
			fmt.Fprintf(stderr, "calls list: %q is not a JID\n", fs.Arg(0))
			return 2
		}
		who = j.Bare().String()
	}
	store, err := server.OpenStore(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "storage:", err)
		return 1
	}
	defer store.Close()
	recs, err := store.Calls().List(context.Background(), who, *n)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "START\tCALLER\tCALLEE\tMEDIA\tANSWERED\tDURATION\tEND REASON\tID")
	for _, r := range recs {
		answered, dur, reason := "-", "-", r.EndReason
		if !r.Answer.IsZero() {
			answered = r.Answer.Sub(r.Start).Round(time.Second).String()
			if !r.End.IsZero() {
				dur = r.End.Sub(r.Answer).Round(time.Second).String()
			}
		}
		if r.End.IsZero() {
			reason = "(going on)"
		}
		media := strings.Join(r.Media, "+")
		if media == "" {
			media = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Start.Local().Format("2006-01-02 15:04:05"), r.Caller, r.Callee, media, answered, dur, reason, r.ID)
	}
	_ = tw.Flush()
	return 0
}
