// Package access turns the play and publish sections of the configuration
// into the one internal/auth Policy that the origin, the edge and RTMP
// ingest all enforce, so a viewer meets the same rules wherever it lands.
package access

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/livegrid/livegrid/internal/auth"
	"github.com/livegrid/livegrid/internal/config"
)

// Policy builds the policy of cfg. Close the returned closer (the GeoIP
// database) when the role stops; it is never nil.
func Policy(cfg *config.Config, log *slog.Logger) (*auth.Policy, func() error, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &auth.Policy{Log: log.With("component", "auth")}
	closer := func() error { return nil }
	pl, pub := cfg.Play, cfg.Publish

	if pl.TokenSecret != "" {
		p.PlaySecrets = auth.Keyring{[]byte(pl.TokenSecret)}
	}
	switch pub.Auth {
	case config.AuthKey:
		p.PublishKey, p.StreamKeys = pub.Key, pub.Keys
	case config.AuthToken:
		p.PublishSecrets = auth.Keyring{[]byte(pub.TokenSecret)}
	}
	if len(pl.RefererAllow)+len(pl.RefererDeny) > 0 || !pl.RefererAllowEmpty {
		rr, err := auth.NewRefererRules(pl.RefererAllow, pl.RefererDeny, pl.RefererAllowEmpty)
		if err != nil {
			return nil, closer, fmt.Errorf("access: 'play.referer_allow': %w", err)
		}
		p.Referer = rr
	}
	var err error
	if p.TrustedProxies, err = prefixes("play.trusted_proxies", pl.TrustedProxies); err != nil {
		return nil, closer, err
	}
	ip := &auth.IPRules{
		AllowCountries: upper(pl.AllowCountries), DenyCountries: upper(pl.DenyCountries),
		AllowRegions: upper(pl.AllowRegions), DenyRegions: upper(pl.DenyRegions),
	}
	if ip.AllowCIDRs, err = prefixes("play.allow_cidrs", pl.AllowCIDRs); err != nil {
		return nil, closer, err
	}
	if ip.DenyCIDRs, err = prefixes("play.deny_cidrs", pl.DenyCIDRs); err != nil {
		return nil, closer, err
	}
	if pl.GeoIPDB != "" {
		db, err := auth.OpenGeoDB(pl.GeoIPDB)
		if err != nil {
			return nil, closer, fmt.Errorf("access: 'play.geoip_db': %w", err)
		}
		ip.Geo, closer = db, db.Close
	}
	if len(ip.AllowCIDRs)+len(ip.DenyCIDRs)+len(ip.AllowCountries)+len(ip.DenyCountries)+len(ip.AllowRegions)+len(ip.DenyRegions) > 0 {
		p.IP = ip
	}
	if pl.CallbackURL != "" {
		p.Callback = &auth.Callback{
			URL: pl.CallbackURL, Timeout: pl.CallbackTimeout,
			CacheTTL: pl.CallbackCache, AllowOnTimeout: pl.CallbackFailOpen,
		}
	}
	if err := p.Validate(); err != nil {
		_ = closer()
		return nil, func() error { return nil }, fmt.Errorf("access: %w", err)
	}
	return p, closer, nil
}

// Open reports whether p lets every play through, so a role can skip the
// middleware's per-request work; request-size limits still apply.
func Open(p *auth.Policy) bool {
	return p.IP == nil && p.Referer == nil && p.Callback == nil && len(p.PlaySecrets) == 0
}

func prefixes(key string, list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range list {
		var (
			pf  netip.Prefix
			err error
		)
		if strings.Contains(s, "/") {
			pf, err = netip.ParsePrefix(s)
			pf = pf.Masked()
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(s); err == nil {
				pf = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("access: '%s[%d]': %w", key, i, err)
		}
		out = append(out, pf)
	}
	return out, nil
}

func upper(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = strings.ToUpper(s)
	}
	return out
}
