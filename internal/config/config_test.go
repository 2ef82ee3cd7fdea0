package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/livegrid/livegrid/internal/store"
)

const samplePath = "../../deploy/livegrid.yaml"

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := Default().ValidateRole(RoleStandalone); err != nil {
		t.Fatal(err)
	}
}

// The shipped sample is a fixture: it must load to exactly the defaults.
func TestSampleEqualsDefaults(t *testing.T) {
	got, err := Load(samplePath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Fatalf("deploy/livegrid.yaml differs from Default():\n got %+v\nwant %+v", got, want)
	}
}

// The sample writes every key, each value under or beside a comment.
func TestSampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(samplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	written := map[string]bool{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := prefix + k.Value
			written[key] = true
			_, isValue := fieldByKey(key)
			if isValue && k.HeadComment == "" && k.LineComment == "" && v.LineComment == "" {
				t.Errorf("sample key '%s' (line %d) has no comment", key, k.Line)
			}
			if v.Kind == yaml.MappingNode && !strings.HasSuffix(key, "keys") {
				walk(v, key+".")
			}
		}
	}
	walk(doc.Content[0], "")
	for _, f := range fields() {
		if !written[f.key] {
			t.Errorf("sample lacks key '%s'", f.key)
		}
	}
}

// Every field has a yaml tag and a distinct variable name.
func TestFieldNames(t *testing.T) {
	seen := map[string]string{}
	for _, f := range fields() {
		if other, ok := seen[f.env]; ok {
			t.Errorf("'%s' and '%s' share %s", f.key, other, f.env)
		}
		seen[f.env] = f.key
	}
	var check func(rt reflect.Type)
	check = func(rt reflect.Type) {
		for i := range rt.NumField() {
			sf := rt.Field(i)
			if sf.IsExported() && yamlName(sf) == "" {
				t.Errorf("%s.%s has no yaml tag", rt.Name(), sf.Name)
			}
			switch {
			case sf.Type.Kind() == reflect.Struct:
				check(sf.Type)
			case sf.Type.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.Struct:
				check(sf.Type.Elem())
			}
		}
	}
	check(reflect.TypeFor[Config]())
	if _, ok := seen["LIVEGRID_SEGMENTS_MAX_DURATION"]; !ok {
		t.Error("no LIVEGRID_SEGMENTS_MAX_DURATION")
	}
}

// A config written back as YAML loads to the same config.
func TestMarshalRoundTrip(t *testing.T) {
	c := Default()
	c.Publish = Publish{Auth: AuthKey, Keys: map[string]string{"cam-1": "k1"}}
	c.Transcode.Rules = []Rule{{Match: "~^m-", Profile: "mobile"}}
	c.Pull = []Pull{{Stream: "lobby", URL: "rtmp://cam/live/lobby"}}
	c.Edge.Origins = []string{"http://o1:8080"}
	c.Store.BufferBytes = 1536 * KiB
	data, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(data, "marshalled", nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, c)
	}
}

func TestStoreURL(t *testing.T) {
	abs := filepath.Join(t.TempDir(), "my data#1")
	for _, tc := range []struct {
		dataDir, url, want string
		wantDir            string
	}{
		{"./data", "", "file:data/store", "data/store"},
		{"/var/lib/livegrid", "", "file:///var/lib/livegrid/store", "/var/lib/livegrid/store"},
		{abs, "", "", filepath.Join(abs, "store")},
		{"./data", "s3://bucket?endpoint=http://127.0.0.1:9000", "s3://bucket?endpoint=http://127.0.0.1:9000", ""},
	} {
		t.Run(tc.dataDir, func(t *testing.T) {
			c := Default()
			c.DataDir, c.Store.URL = tc.dataDir, tc.url
			got := c.StoreURL()
			if tc.want != "" && got != tc.want {
				t.Errorf("StoreURL() = %q, want %q", got, tc.want)
			}
			loc, err := store.ParseURL(got)
			if err != nil {
				t.Fatalf("store.ParseURL(%q): %v", got, err)
			}
			if tc.wantDir != "" && loc.Dir != filepath.FromSlash(tc.wantDir) {
				t.Errorf("store dir %q, want %q", loc.Dir, tc.wantDir)
			}
		})
	}
	// The derivation follows data_dir wherever it was set.
	c, err := Parse(nil, "", []string{"LIVEGRID_DATA_DIR=/srv/lg"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.StoreURL(); got != "file:///srv/lg/store" {
		t.Errorf("StoreURL() after LIVEGRID_DATA_DIR = %q", got)
	}
}

func TestProfileFor(t *testing.T) {
	tr := Transcode{Profile: "default", Rules: []Rule{
		{Match: "mobile-*", Profile: "mobile"},
		{Match: "~^sports-[0-9]+$", Profile: "hevc"},
	}}
	for stream, want := range map[string]string{
		"mobile-1": "mobile", "sports-12": "hevc", "sports-x": "default", "cam": "default",
	} {
		if got := tr.ProfileFor(stream); got != want {
			t.Errorf("ProfileFor(%q) = %q, want %q", stream, got, want)
		}
	}
}

func TestWorkerID(t *testing.T) {
	c := Default()
	if id := c.WorkerID(); id == "" {
		t.Error("WorkerID() is empty")
	}
	c.Worker.ID = "w-1"
	if id := c.WorkerID(); id != "w-1" {
		t.Errorf("WorkerID() = %q", id)
	}
}

func TestValidateRole(t *testing.T) {
	c := Default()
	for _, tc := range []struct {
		role Role
		want string
	}{
		{RoleStandalone, ""},
		{RoleCoordinator, "'redis.url' is required by the coordinator role"},
		{RoleWorker, "'redis.url' is required by the worker role"},
		{RoleEdge, "'edge.origins' must name at least one origin"},
		{"bogus", `unknown role "bogus"`},
	} {
		t.Run(string(tc.role), func(t *testing.T) {
			checkErr(t, c.ValidateRole(tc.role), tc.want)
		})
	}
	c.Redis.URL = "redis://127.0.0.1:6379"
	c.Edge.Origins = []string{"http://o:8080"}
	for _, r := range []Role{RoleCoordinator, RoleWorker, RoleEdge} {
		if err := c.ValidateRole(r); err != nil {
			t.Errorf("%s: %v", r, err)
		}
	}
}

func TestByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
		str  string
	}{
		{"0", 0, "0B"}, {"1048576", MiB, "1MiB"}, {"256MiB", 256 * MiB, "256MiB"},
		{"1.5GiB", 1536 * MiB, "1536MiB"}, {"500MB", 500e6, "500000000B"}, {"64 kib", 64 * KiB, "64KiB"},
		{"2TiB", 2 * TiB, "2TiB"}, {"10B", 10, "10B"}, {"1kB", 1000, "1000B"},
	} {
		got, err := ParseByteSize(tc.in)
		if err != nil || got != tc.want || got.String() != tc.str {
			t.Errorf("ParseByteSize(%q) = %v (%d), %v; want %s", tc.in, got, int64(got), err, tc.str)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5B", "12XB", "NaN", "Inf", "0x10", "1e30", "1_000"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", in)
		}
	}
}

func TestRedisOptions(t *testing.T) {
	o, err := Redis{URL: "redis://:pw@redis-1:6380/2"}.UniversalOptions()
	if err != nil || len(o.Addrs) != 1 || o.Addrs[0] != "redis-1:6380" || o.Password != "pw" || o.DB != 2 || o.MasterName != "" {
		t.Errorf("single: %+v, %v", o, err)
	}
	o, err = Redis{URL: "redis://sp@s1:26379/1?master_name=mymaster&addr=s2:26379&password=mp"}.UniversalOptions()
	if err != nil || o.MasterName != "mymaster" || len(o.Addrs) != 2 || o.Password != "mp" || o.DB != 1 {
		t.Errorf("sentinel: %+v, %v", o, err)
	}
	o, err = Redis{URL: "rediss://redis-1:6380"}.UniversalOptions()
	if err != nil || o.TLSConfig == nil {
		t.Errorf("tls: %+v, %v", o, err)
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q\n does not contain %q", err, want)
	}
}
