package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// settingKind names the type of value a setting takes, for the flag help ("-batch-size int").
// Every flag of a setting is a string flag underneath (so that unset flags fall back to the
// environment), so the flag package's own type names would all say "string".
func settingKind(s setting) string {
	if s.kind != "" {
		return s.kind
	}
	if s.def == "" {
		return "string"
	}
	if _, err := strconv.Atoi(s.def); err == nil {
		return "int"
	}
	if _, err := strconv.ParseBool(s.def); err == nil {
		return "bool"
	}
	if _, err := parseDuration(s.def); err == nil {
		return "duration"
	}
	if parts := strings.Split(s.def, ","); len(parts) > 1 {
		for _, p := range parts {
			if _, err := parseDuration(p); err != nil {
				return "list"
			}
		}
		return "durations"
	}
	return "string"
}

// settingByFlag maps a flag name to its setting.
func settingByFlag() map[string]setting {
	m := make(map[string]setting, len(settings))
	for _, s := range settings {
		m[flagName(s.env)] = s
	}
	return m
}

// setUsage makes fs print a readable help: the synopsis, the command's own flags, then the
// configuration flags with their types, defaults and variables. Unlike flag.PrintDefaults it
// does not read a back-quoted word of the help text as the argument's name.
func setUsage(fs *flag.FlagSet, synopsis string) {
	fs.Usage = func() { printUsage(fs.Output(), fs, synopsis) }
}

func printUsage(w io.Writer, fs *flag.FlagSet, synopsis string) {
	fmt.Fprintf(w, "usage: resumer %s\n", synopsis)
	byFlag := settingByFlag()
	var own, conf []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := byFlag[f.Name]; ok {
			conf = append(conf, f)
		} else {
			own = append(own, f)
		}
	})
	if len(own) > 0 {
		fmt.Fprintln(w, "\nflags:")
		for _, f := range own {
			kind, help := flag.UnquoteUsage(f) // kind is empty for a bool flag
			printFlag(w, f.Name, kind, help, f.DefValue)
		}
	}
	if len(conf) > 0 {
		fmt.Fprintln(w, "\nconfiguration (each flag also reads its RESUMER_ variable; README.md has the table):")
		for _, f := range conf {
			s := byFlag[f.Name]
			help := strings.ReplaceAll(s.usage, "`", "")
			help += " (env " + s.env
			if s.secret {
				help += ", or " + s.env + "_FILE"
			}
			help += ")"
			printFlag(w, f.Name, settingKind(s), help, s.def)
		}
	}
}

func printFlag(w io.Writer, name, kind, help, def string) {
	line := "  --" + name
	if kind != "" {
		line += " " + kind
	}
	fmt.Fprintln(w, line)
	if def != "" && def != "false" && def != "0" {
		help += fmt.Sprintf(" (default %s)", def)
	}
	fmt.Fprintf(w, "    \t%s\n", help)
}

// synopses are the first line of each command's help, keyed by the name loadConfig and the
// flag sets are given.
var synopses = map[string]string{
	"serve":            "serve [flags]",
	"dev":              "dev [--demo] [flags]",
	"inquiry show":     "inquiry show <inquiry-id> [--json] [--reveal] [flags]",
	"inquiry expiring": "inquiry expiring [--within 2h] [--limit N] [--json] [flags]",
	"dlq list":         "dlq list [--limit N] [--json] [flags]",
	"dlq replay":       "dlq replay [--all | SEQ...] [flags]",
	"config check":     "config check [flags]",
	"webhook sign":     "webhook sign (--secret S | --secret-file F) [--timestamp T] < body.json",
	"webhook send":     "webhook send --url U (--secret S | --secret-file F) [--fresh] < body.json",
	"persona-sim":      "persona-sim [--addr A] [--webhook-url U --webhook-secret S]",
	"bench":            "bench [flags] [scenario ...]",
}

func synopsis(name string) string {
	if s, ok := synopses[name]; ok {
		return s
	}
	return name + " [flags]"
}

// subcommand returns the subcommand args[0] of cmd, one of subs. -h, --help or help prints
// the subcommands' synopses to stdout and returns flag.ErrHelp; anything else is an error
// that lists them.
func subcommand(cmd string, args []string, stdout io.Writer, subs ...string) (string, error) {
	var lines []string
	for _, s := range subs {
		lines = append(lines, "  resumer "+synopsis(cmd+" "+s))
	}
	list := strings.Join(lines, "\n")
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			fmt.Fprintf(stdout, "usage:\n%s\n\nadd -h after a subcommand for its flags\n", list)
			return "", flag.ErrHelp
		}
		for _, s := range subs {
			if args[0] == s {
				return s, nil
			}
		}
		return "", fmt.Errorf("%s: unknown subcommand %q; want one of:\n%s", cmd, args[0], list)
	}
	return "", fmt.Errorf("%s: want a subcommand:\n%s", cmd, list)
}
