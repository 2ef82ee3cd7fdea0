package edge

import (
	"net/http"
	"testing"
	"time"
)

// FuzzFreshness feeds origin Cache-Control and Age headers (bytes from
// the network) to the freshness rules: never a panic, a negative TTL or a
// playlist held past the cap.
func FuzzFreshness(f *testing.F) {
	for _, s := range []string{
		"public, max-age=31536000, immutable", "max-age=1", "no-cache", "no-store", "private",
		"s-maxage=5, max-age=1", `max-age="3"`, "max-age=-1", "max-age=99999999999999999999", ",,=,", "",
	} {
		f.Add(s, "0", "/live/s/index.m3u8")
	}
	f.Add("max-age=10", "4", "/live/s/v/00000001.m4s")
	f.Fuzz(func(t *testing.T, cacheControl, age, path string) {
		fr := defaultFreshness()
		h := http.Header{"Cache-Control": {cacheControl}, "Age": {age}}
		now := time.Unix(1e9, 0)
		for _, status := range []int{200, 404, 503} {
			o := newObject(path, status, h, []byte("x"), now, fr)
			ttl := o.expires.Sub(now)
			if !o.expires.IsZero() && (ttl <= 0 || ttl > max(fr.playlistMaxTTL, fr.playlistTTL, fr.negativeTTL)) {
				t.Fatalf("status %d %q age %q: ttl %v", status, cacheControl, age, ttl)
			}
			if o.expires.IsZero() && o.store && (status != 200 || !immutable(path)) {
				t.Fatalf("status %d %s kept forever", status, path)
			}
			if o.ageAt(now) == "" || o.ageAt(now)[0] == '-' {
				t.Fatalf("Age %q", o.ageAt(now))
			}
		}
	})
}
