package auth

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// fakeGeo is a GeoLookup made of a function field.
type fakeGeo struct {
	lookup func(netip.Addr) (Location, error)
}

func (f fakeGeo) Lookup(a netip.Addr) (Location, error) { return f.lookup(a) }

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// testGeoData places the documentation networks.
var testGeoData = []struct {
	cidr      string
	country   string
	continent string
	sub       string
}{
	{"192.0.2.0/24", "DE", "EU", "BY"},
	{"198.51.100.0/24", "US", "NA", "CA"},
	{"203.0.113.0/24", "CN", "AS", ""},
	{"2001:db8::/32", "FR", "EU", "IDF"},
}

// writeGeoDB writes a MaxMind-format City database with testGeoData.
func writeGeoDB(t *testing.T) string {
	t.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "GeoIP2-City",
		IncludeReservedNetworks: true,
		RecordSize:              24,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range testGeoData {
		_, n, err := net.ParseCIDR(d.cidr)
		if err != nil {
			t.Fatal(err)
		}
		rec := mmdbtype.Map{
			"continent": mmdbtype.Map{"code": mmdbtype.String(d.continent)},
			"country":   mmdbtype.Map{"iso_code": mmdbtype.String(d.country)},
		}
		if d.sub != "" {
			rec["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"iso_code": mmdbtype.String(d.sub)}}
		}
		if err := w.Insert(n, rec); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "GeoIP2-City-test.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func openTestGeoDB(t *testing.T) *GeoDB {
	t.Helper()
	db, err := OpenGeoDB(writeGeoDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestGeoDBLookup(t *testing.T) {
	db := openTestGeoDB(t)
	tests := []struct {
		addr string
		want Location
	}{
		{"192.0.2.10", Location{Country: "DE", Continent: "EU", Regions: []string{"DE-BY"}}},
		{"::ffff:192.0.2.10", Location{Country: "DE", Continent: "EU", Regions: []string{"DE-BY"}}},
		{"198.51.100.200", Location{Country: "US", Continent: "NA", Regions: []string{"US-CA"}}},
		{"203.0.113.1", Location{Country: "CN", Continent: "AS"}},
		{"2001:db8:abcd::1", Location{Country: "FR", Continent: "EU", Regions: []string{"FR-IDF"}}},
		{"10.1.2.3", Location{}},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got, err := db.Lookup(netip.MustParseAddr(tt.addr))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Lookup = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestOpenGeoDBErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.mmdb")
	if err := os.WriteFile(bad, []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{bad, filepath.Join(t.TempDir(), "missing.mmdb")} {
		if _, err := OpenGeoDB(p); err == nil {
			t.Errorf("OpenGeoDB(%s) succeeded", p)
		}
	}
}

func TestIPRules(t *testing.T) {
	db := openTestGeoDB(t)
	const (
		de    = "192.0.2.10"
		us    = "198.51.100.7"
		cn    = "203.0.113.9"
		fr6   = "2001:db8::9"
		lan   = "10.0.0.5"
		other = "100.64.0.1"
	)
	tests := []struct {
		name       string
		rules      IPRules
		addr       string
		wantRule   string
		wantReason string
	}{
		{name: "no rules", rules: IPRules{}, addr: cn},
		{name: "deny cidr", rules: IPRules{DenyCIDRs: prefixes("203.0.113.0/24")}, addr: cn, wantRule: RuleIP, wantReason: ReasonIPDenied},
		{name: "deny cidr, other address", rules: IPRules{DenyCIDRs: prefixes("203.0.113.0/24")}, addr: de},
		{name: "deny cidr, mapped address", rules: IPRules{DenyCIDRs: prefixes("203.0.113.0/24")}, addr: "::ffff:" + cn, wantRule: RuleIP, wantReason: ReasonIPDenied},
		{name: "allow cidr", rules: IPRules{AllowCIDRs: prefixes("10.0.0.0/8")}, addr: lan},
		{name: "allow cidr, outside", rules: IPRules{AllowCIDRs: prefixes("10.0.0.0/8")}, addr: de, wantRule: RuleIP, wantReason: ReasonIPNotAllowed},
		{name: "ipv6 allow cidr", rules: IPRules{AllowCIDRs: prefixes("2001:db8::/48")}, addr: fr6},
		{name: "deny beats allow cidr", rules: IPRules{AllowCIDRs: prefixes("10.0.0.0/8"), DenyCIDRs: prefixes("10.0.0.0/24")}, addr: lan, wantRule: RuleIP, wantReason: ReasonIPDenied},
		{name: "invalid address", rules: IPRules{DenyCIDRs: prefixes("203.0.113.0/24")}, addr: "", wantRule: RuleIP, wantReason: ReasonIPUnknown},
		{name: "deny country", rules: IPRules{DenyCountries: []string{"CN"}, Geo: db}, addr: cn, wantRule: RuleGeo, wantReason: ReasonCountryDenied},
		{name: "deny country, lowercase", rules: IPRules{DenyCountries: []string{"cn"}, Geo: db}, addr: cn, wantRule: RuleGeo, wantReason: ReasonCountryDenied},
		{name: "deny country, other", rules: IPRules{DenyCountries: []string{"CN"}, Geo: db}, addr: us},
		{name: "deny country, unknown location", rules: IPRules{DenyCountries: []string{"CN"}, Geo: db}, addr: lan},
		{name: "allow countries", rules: IPRules{AllowCountries: []string{"DE", "FR"}, Geo: db}, addr: de},
		{name: "allow countries, ipv6", rules: IPRules{AllowCountries: []string{"DE", "FR"}, Geo: db}, addr: fr6},
		{name: "allow countries, outside", rules: IPRules{AllowCountries: []string{"DE", "FR"}, Geo: db}, addr: us, wantRule: RuleGeo, wantReason: ReasonLocationNotAllowed},
		{name: "allow countries, unknown location", rules: IPRules{AllowCountries: []string{"DE"}, Geo: db}, addr: other, wantRule: RuleGeo, wantReason: ReasonLocationNotAllowed},
		{name: "allow countries or office cidr", rules: IPRules{AllowCountries: []string{"DE"}, AllowCIDRs: prefixes("10.0.0.0/8"), Geo: db}, addr: lan},
		{name: "deny region", rules: IPRules{DenyRegions: []string{"US-CA"}, Geo: db}, addr: us, wantRule: RuleGeo, wantReason: ReasonRegionDenied},
		{name: "deny region, other", rules: IPRules{DenyRegions: []string{"US-NY"}, Geo: db}, addr: us},
		{name: "allow continent", rules: IPRules{AllowRegions: []string{"EU"}, Geo: db}, addr: de},
		{name: "allow continent, outside", rules: IPRules{AllowRegions: []string{"EU"}, Geo: db}, addr: cn, wantRule: RuleGeo, wantReason: ReasonLocationNotAllowed},
		{name: "deny continent", rules: IPRules{DenyRegions: []string{"AS"}, Geo: db}, addr: cn, wantRule: RuleGeo, wantReason: ReasonRegionDenied},
		{name: "allow region in denied country", rules: IPRules{DenyCountries: []string{"US"}, AllowRegions: []string{"US-CA"}, Geo: db}, addr: us, wantRule: RuleGeo, wantReason: ReasonCountryDenied},
		{name: "denied country beats allowed cidr", rules: IPRules{DenyCountries: []string{"CN"}, AllowCIDRs: prefixes("203.0.113.0/24"), Geo: db}, addr: cn, wantRule: RuleGeo, wantReason: ReasonCountryDenied},
		{name: "lookup error fails closed", rules: IPRules{AllowCountries: []string{"DE"}, Geo: fakeGeo{lookup: func(netip.Addr) (Location, error) {
			return Location{}, errors.New("database gone")
		}}}, addr: de, wantRule: RuleGeo, wantReason: ReasonGeoError},
		{name: "allowed cidr skips lookup", rules: IPRules{AllowCountries: []string{"DE"}, AllowCIDRs: prefixes("10.0.0.0/8"), Geo: fakeGeo{lookup: func(netip.Addr) (Location, error) {
			panic("looked up an allowed address")
		}}}, addr: lan},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.rules.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			var addr netip.Addr
			if tt.addr != "" {
				addr = netip.MustParseAddr(tt.addr)
			}
			rule, reason := tt.rules.Check(addr)
			if rule != tt.wantRule || reason != tt.wantReason {
				t.Errorf("Check(%s) = %q, %q; want %q, %q", tt.addr, rule, reason, tt.wantRule, tt.wantReason)
			}
		})
	}
}

func TestIPRulesValidate(t *testing.T) {
	geo := fakeGeo{lookup: func(netip.Addr) (Location, error) { return Location{}, nil }}
	tests := []struct {
		name  string
		rules IPRules
	}{
		{"countries without database", IPRules{AllowCountries: []string{"DE"}}},
		{"three-letter country", IPRules{DenyCountries: []string{"DEU"}, Geo: geo}},
		{"numeric country", IPRules{DenyCountries: []string{"12"}, Geo: geo}},
		{"bad region", IPRules{AllowRegions: []string{"US-"}, Geo: geo}},
		{"zero prefix", IPRules{DenyCIDRs: []netip.Prefix{{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.rules.Validate(); err == nil {
				t.Error("Validate accepted it")
			}
		})
	}
}
