package manifest

import (
	"encoding/xml"
	"net/url"
	"strings"
	"testing"
)

func TestLinkQuery(t *testing.T) {
	q := url.Values{"expires": {"1700000000"}, "token": {"ab"}, "other": {"x"}, "session": {"s1", "s2"}}
	if got, want := LinkQuery(q), "expires=1700000000&session=s1&token=ab"; got != want {
		t.Fatalf("LinkQuery = %q, want %q", got, want)
	}
	if got := LinkQuery(url.Values{"x": {"1"}}); got != "" {
		t.Fatalf("LinkQuery without link params = %q", got)
	}
}

func TestAddQueryHLS(t *testing.T) {
	master := "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",URI=\"aac/index.m3u8\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p/index.m3u8\n"
	got := string(AddQueryHLS([]byte(master), "token=t&expires=1"))
	for _, want := range []string{`URI="aac/index.m3u8?token=t&expires=1"`, "\n720p/index.m3u8?token=t&expires=1\n", "#EXT-X-STREAM-INF:BANDWIDTH=1\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("master lacks %q:\n%s", want, got)
		}
	}
	media := "#EXTM3U\r\n#EXT-X-MAP:URI=\"init.mp4\"\r\n#EXTINF:2.000,\r\n00000001.m4s\r\n"
	got = string(AddQueryHLS([]byte(media), "token=t"))
	if !strings.Contains(got, `URI="init.mp4?token=t"`) || !strings.Contains(got, "00000001.m4s?token=t") {
		t.Errorf("media playlist links not signed:\n%s", got)
	}
	if string(AddQueryHLS([]byte(media), "")) != media {
		t.Error("an empty query changed the playlist")
	}
}

func TestAddQueryDASH(t *testing.T) {
	mpd := `<MPD><Period><AdaptationSet><SegmentTemplate media="720p/$Number%08d$.m4s" initialization="720p/init.mp4"></SegmentTemplate></AdaptationSet></Period></MPD>`
	got := AddQueryDASH([]byte(mpd), "token=t&expires=1")
	var doc struct {
		T struct {
			Media string `xml:"media,attr"`
			Init  string `xml:"initialization,attr"`
		} `xml:"Period>AdaptationSet>SegmentTemplate"`
	}
	if err := xml.Unmarshal(got, &doc); err != nil {
		t.Fatalf("rewritten MPD is not XML: %v\n%s", err, got)
	}
	if doc.T.Media != "720p/$Number%08d$.m4s?token=t&expires=1" || doc.T.Init != "720p/init.mp4?token=t&expires=1" {
		t.Fatalf("templates %q %q", doc.T.Media, doc.T.Init)
	}
}

func TestAddQueryReplacesLinkParams(t *testing.T) {
	edgeCopy := "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4?expires=1&token=edge\"\n00000001.m4s?x=1&expires=1&token=edge\n"
	got := string(AddQueryHLS([]byte(edgeCopy), "expires=2&token=viewer"))
	if strings.Contains(got, "edge") || !strings.Contains(got, `URI="init.mp4?expires=2&token=viewer"`) || !strings.Contains(got, "00000001.m4s?x=1&expires=2&token=viewer") {
		t.Fatalf("the edge's token was not replaced by the viewer's:\n%s", got)
	}
	got = string(AddQueryHLS([]byte(edgeCopy), ""))
	if strings.Contains(got, "token") || !strings.Contains(got, `URI="init.mp4"`) || !strings.Contains(got, "00000001.m4s?x=1\n") {
		t.Fatalf("a viewer without a token got the edge's:\n%s", got)
	}
	mpd := `<S media="a/$Number$.m4s?expires=1&amp;token=edge" initialization="a/init.mp4?expires=1&amp;token=edge"/>`
	if got := string(AddQueryDASH([]byte(mpd), "")); got != `<S media="a/$Number$.m4s" initialization="a/init.mp4"/>` {
		t.Fatalf("MPD: %s", got)
	}
}
