package auth

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/oschwald/maxminddb-golang"
)

// Rules, as reported in Decision.Rule.
const (
	RuleRequest   = "request"
	RuleIP        = "ip"
	RuleGeo       = "geo"
	RuleReferer   = "referer"
	RuleToken     = "token"
	RuleStreamKey = "stream_key"
	RuleCallback  = "callback"
)

// IP and GeoIP decision reasons.
const (
	ReasonIPUnknown          = "ip_unknown"
	ReasonIPDenied           = "ip_denied"
	ReasonIPNotAllowed       = "ip_not_allowed"
	ReasonCountryDenied      = "country_denied"
	ReasonRegionDenied       = "region_denied"
	ReasonLocationNotAllowed = "location_not_allowed"
	ReasonGeoError           = "geo_error"
)

// Location is where a GeoIP database places an address.
type Location struct {
	// Country is the ISO 3166-1 alpha-2 code ("DE"), "" when unknown.
	Country string
	// Continent is the two-letter continent code ("EU").
	Continent string
	// Regions are ISO 3166-2 subdivision codes ("DE-BY"), largest first.
	Regions []string
}

// GeoLookup places an address; GeoDB is the MaxMind implementation.
type GeoLookup interface {
	Lookup(addr netip.Addr) (Location, error)
}

// IPRules restrict clients by address and location. Deny wins: an address
// in DenyCIDRs, a denied country or a denied region is refused. With any
// allow list set, the address must then match one of them (AllowCIDRs,
// AllowCountries or AllowRegions), so an office network can be let in
// next to a list of countries. Countries are ISO 3166-1 alpha-2 codes;
// regions are ISO 3166-2 subdivision codes ("US-CA") or continent codes
// ("EU"). An address the database does not know matches no location.
type IPRules struct {
	AllowCIDRs     []netip.Prefix
	DenyCIDRs      []netip.Prefix
	AllowCountries []string
	DenyCountries  []string
	AllowRegions   []string
	DenyRegions    []string
	// Geo places addresses; needed when a country or region list is set.
	Geo GeoLookup
}

// Validate refuses location lists without a database and malformed codes.
func (r *IPRules) Validate() error {
	if r.geoRules() && r.Geo == nil {
		return errors.New("auth: ip rules: country or region lists need a GeoIP database")
	}
	for _, l := range []struct {
		name  string
		codes []string
	}{{"allow_countries", r.AllowCountries}, {"deny_countries", r.DenyCountries}} {
		for _, c := range l.codes {
			if len(c) != 2 || !isAlpha(c) {
				return fmt.Errorf("auth: ip rules: '%s': %q is not a two-letter country code", l.name, c)
			}
		}
	}
	for _, l := range []struct {
		name  string
		codes []string
	}{{"allow_regions", r.AllowRegions}, {"deny_regions", r.DenyRegions}} {
		for _, c := range l.codes {
			cc, sub, sep := strings.Cut(c, "-")
			if len(cc) != 2 || !isAlpha(cc) || sep && (sub == "" || len(sub) > 3) {
				return fmt.Errorf("auth: ip rules: '%s': %q is neither a subdivision (US-CA) nor a continent (EU) code", l.name, c)
			}
		}
	}
	for _, p := range append(slices.Clip(r.AllowCIDRs), r.DenyCIDRs...) {
		if !p.IsValid() {
			return errors.New("auth: ip rules: invalid CIDR")
		}
	}
	return nil
}

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func (r *IPRules) geoRules() bool {
	return len(r.AllowCountries)+len(r.DenyCountries)+len(r.AllowRegions)+len(r.DenyRegions) > 0
}

func (r *IPRules) any() bool {
	return r.geoRules() || len(r.AllowCIDRs)+len(r.DenyCIDRs) > 0
}

// Check returns the rule and reason that refuse addr, or two empty
// strings when it passes. A lookup error refuses (fail closed).
func (r *IPRules) Check(addr netip.Addr) (rule, reason string) {
	if !r.any() {
		return "", ""
	}
	addr = addr.WithZone("").Unmap()
	if !addr.IsValid() {
		return RuleIP, ReasonIPUnknown
	}
	if inAny(r.DenyCIDRs, addr) {
		return RuleIP, ReasonIPDenied
	}
	allowedByCIDR := inAny(r.AllowCIDRs, addr)
	var loc Location
	if r.geoRules() && r.Geo != nil && (!allowedByCIDR || len(r.DenyCountries)+len(r.DenyRegions) > 0) {
		var err error
		if loc, err = r.Geo.Lookup(addr); err != nil {
			return RuleGeo, ReasonGeoError
		}
		if loc.Country != "" && containsFold(r.DenyCountries, loc.Country) {
			return RuleGeo, ReasonCountryDenied
		}
		if matchRegion(r.DenyRegions, loc) {
			return RuleGeo, ReasonRegionDenied
		}
	}
	if len(r.AllowCIDRs)+len(r.AllowCountries)+len(r.AllowRegions) == 0 || allowedByCIDR {
		return "", ""
	}
	if loc.Country != "" && containsFold(r.AllowCountries, loc.Country) || matchRegion(r.AllowRegions, loc) {
		return "", ""
	}
	if len(r.AllowCountries)+len(r.AllowRegions) > 0 {
		return RuleGeo, ReasonLocationNotAllowed
	}
	return RuleIP, ReasonIPNotAllowed
}

func inAny(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func matchRegion(list []string, loc Location) bool {
	if loc.Continent != "" && containsFold(list, loc.Continent) {
		return true
	}
	for _, r := range loc.Regions {
		if containsFold(list, r) {
			return true
		}
	}
	return false
}

// GeoDB is a MaxMind-format (GeoIP2/GeoLite2 Country or City) database.
// It is safe for concurrent use.
type GeoDB struct {
	r *maxminddb.Reader
}

var _ GeoLookup = (*GeoDB)(nil)

// OpenGeoDB opens the .mmdb file at path.
func OpenGeoDB(path string) (*GeoDB, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: open geoip database: %w", err)
	}
	return &GeoDB{r: r}, nil
}

// Close releases the database.
func (g *GeoDB) Close() error {
	return g.r.Close()
}

// geoRecord is the part of a GeoIP2 record that rules look at.
type geoRecord struct {
	Continent struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"continent"`
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
	Subdivisions []struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"subdivisions"`
}

// Lookup places addr; an address the database lacks gives a zero Location.
func (g *GeoDB) Lookup(addr netip.Addr) (Location, error) {
	var rec geoRecord
	if _, _, err := g.r.LookupNetwork(addr.WithZone("").Unmap().AsSlice(), &rec); err != nil {
		return Location{}, fmt.Errorf("auth: geoip lookup %s: %w", addr, err)
	}
	loc := Location{Country: rec.Country.ISOCode, Continent: rec.Continent.Code}
	if loc.Country == "" {
		loc.Country = rec.RegisteredCountry.ISOCode
	}
	for _, s := range rec.Subdivisions {
		if s.ISOCode != "" && loc.Country != "" {
			loc.Regions = append(loc.Regions, loc.Country+"-"+s.ISOCode)
		}
	}
	return loc, nil
}
