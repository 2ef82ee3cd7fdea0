package config

import (
	"flag"
	"fmt"
)

// flagKeys maps the flags AddFlags defines to the keys they set
// (DESIGN.md, "Standalone defaults").
var flagKeys = []struct{ flag, key, usage string }{
	{"rtmp-addr", "rtmp.addr", "RTMP listen address (rtmp.addr)"},
	{"http-addr", "http.addr", "HTTP listen address (http.addr)"},
	{"data-dir", "data_dir", "directory for local state and the default file store (data_dir)"},
}

// AddFlags defines --config and the flags that override keys
// (--rtmp-addr, --http-addr, --data-dir) on fs, and returns where the
// --config path lands. Their defaults are shown for help only: ApplyFlags
// applies just the flags given on the command line.
func AddFlags(fs *flag.FlagSet) *string {
	path := fs.String("config", "", "YAML config file (see deploy/livegrid.yaml); LIVEGRID_* variables override it")
	d := Default()
	for _, f := range flagKeys {
		def := fmt.Sprint(fieldValue(d, f.key))
		fs.String(f.flag, def, f.usage)
	}
	return path
}

// ApplyFlags sets the keys of the AddFlags flags that were given on fs's
// command line (flag.FlagSet.Visit), so flags beat the file and the
// environment, and validates c again.
func (c *Config) ApplyFlags(fs *flag.FlagSet) error {
	var err error
	origins := map[string]origin{}
	fs.Visit(func(fl *flag.Flag) {
		for _, f := range flagKeys {
			if fl.Name != f.flag || err != nil {
				continue
			}
			if e := c.set(f.key, fl.Value.String()); e != nil {
				err = &Error{Source: "--" + f.flag, Key: f.key, Msg: e.Error()}
			}
			origins[f.key] = origin{source: "--" + f.flag}
		}
	})
	if err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return locate(err, origins)
	}
	return nil
}
