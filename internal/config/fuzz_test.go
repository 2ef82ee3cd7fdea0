package config

import (
	"os"
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzParse feeds arbitrary bytes as a config file: Parse must not panic
// or hang, and whatever it accepts must be valid and load the same again.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile(samplePath); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml", nil)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted an invalid config: %v", err)
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(out, "marshalled.yaml", nil)
		if err != nil {
			t.Fatalf("written back, refused: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("written back, differs:\n got %+v\nwant %+v", again, c)
		}
	})
}
