package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/store"
)

// Backend is a store implementation under the conformance table.
type Backend struct {
	// Open returns an empty store for one subtest; the table closes it.
	Open func(t *testing.T) store.Store
	// ContentType, when set, reads back the content type stored for key;
	// backends that keep none leave it nil.
	ContentType func(t *testing.T, key string) string
}

// BadKeys are keys every backend must refuse with ErrBadKey.
var BadKeys = []string{
	"",
	"/live/a.m4s",
	"..",
	"../a",
	"live/../a",
	"live/..",
	"./a",
	"live/./a",
	"live//a",
	"live/a/",
	`live\a.m4s`,
	"live/a\x00b",
	"live/a\nb",
	"live/\xff.m4s",
	strings.Repeat("a", store.MaxKeyLen+1),
}

// LongKey is a valid key of exactly MaxKeyLen bytes whose segments fit a
// filesystem's 255-byte name limit.
var LongKey = func() string {
	k := strings.Repeat(strings.Repeat("x", 200)+"/", 5)
	return k + strings.Repeat("y", store.MaxKeyLen-len(k))
}()

// Conformance runs the behaviour every store.Store backend must share.
func Conformance(t *testing.T, b Backend) {
	tests := []struct {
		name string
		run  func(t *testing.T, ctx context.Context, st store.Store, b Backend)
	}{
		{"put then get returns the bytes", testRoundTrip},
		{"put replaces the object", testReplace},
		{"get of a missing key is ErrNotFound", testNotFound},
		{"delete removes and is idempotent", testDelete},
		{"list by prefix", testList},
		{"bad keys are refused", testBadKeys},
		{"content types", testContentTypes},
		{"concurrent puts never expose part of an object", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			st := b.Open(t)
			defer func() {
				if err := st.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			tc.run(t, ctx, st, b)
		})
	}
}

func mustPut(t *testing.T, ctx context.Context, st store.Store, key string, data []byte) {
	t.Helper()
	if err := st.Put(ctx, key, data, "application/octet-stream"); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func mustGet(t *testing.T, ctx context.Context, st store.Store, key string) []byte {
	t.Helper()
	got, err := st.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return got
}

func testRoundTrip(t *testing.T, ctx context.Context, st store.Store, _ Backend) {
	binary := make([]byte, 70000)
	for i := range binary {
		binary[i] = byte(i * 7)
	}
	cases := []struct {
		key  string
		data []byte
	}{
		{"live/cam1/s1/720p/00000042.m4s", binary},
		{"live/cam1/s1/720p/init.mp4", []byte{0, 0, 0, 0x18, 'f', 't', 'y', 'p'}},
		{"live/cam1/s1/index.m3u8", []byte("#EXTM3U\n")},
		{"empty", []byte{}},
		{"live/straße/s p a c e/ü+%20&=.m4s", []byte("odd characters")},
		{LongKey, []byte("a key of exactly 1024 bytes")},
	}
	for _, c := range cases {
		mustPut(t, ctx, st, c.key, c.data)
	}
	for _, c := range cases {
		if got := mustGet(t, ctx, st, c.key); !bytes.Equal(got, c.data) {
			t.Errorf("Get(%.40q) = %d bytes, want %d", c.key, len(got), len(c.data))
		}
	}
}

func testReplace(t *testing.T, ctx context.Context, st store.Store, _ Backend) {
	const key = "live/cam1/s1/index.m3u8"
	mustPut(t, ctx, st, key, []byte("first version, longer than the second"))
	mustPut(t, ctx, st, key, []byte("second"))
	if got := mustGet(t, ctx, st, key); string(got) != "second" {
		t.Errorf("Get after replace = %q, want %q", got, "second")
	}
	objs, err := st.List(ctx, "live/")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(objs) != 1 || objs[0].Size != int64(len("second")) {
		t.Errorf("List after replace = %+v, want one object of %d bytes", objs, len("second"))
	}
}

func testNotFound(t *testing.T, ctx context.Context, st store.Store, _ Backend) {
	mustPut(t, ctx, st, "live/cam1/s1/720p/00000001.m4s", []byte("x"))
	for _, key := range []string{
		"live/cam1/s1/720p/00000002.m4s",       // never written
		"nothing/here",                         // no such folder
		"live/cam1/s1/720p",                    // a folder, not an object
		"live/cam1/s1/720p/00000001.m4s/below", // below an object
	} {
		_, err := st.Get(ctx, key)
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(%q) error = %v, want ErrNotFound", key, err)
		}
	}
}

func testDelete(t *testing.T, ctx context.Context, st store.Store, _ Backend) {
	const key = "live/cam1/s1/720p/00000001.m4s"
	const other = "live/cam1/s1/720p/00000002.m4s"
	mustPut(t, ctx, st, key, []byte("x"))
	mustPut(t, ctx, st, other, []byte("y"))
	for i := range 2 {
		if err := st.Delete(ctx, key); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	if _, err := st.Get(ctx, key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Delete error = %v, want ErrNotFound", err)
	}
	if err := st.Delete(ctx, "never/written"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	if got := mustGet(t, ctx, st, other); string(got) != "y" {
		t.Errorf("the other object = %q after Delete", got)
	}
	// Deleting the last objects of a session leaves nothing to list.
	if err := st.Delete(ctx, other); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	objs, err := st.List(ctx, "")
	if err != nil || len(objs) != 0 {
		t.Errorf("List after deleting all = %v, %v; want nothing", objs, err)
	}
	// The folder that held them can be written again.
	mustPut(t, ctx, st, key, []byte("again"))
}

func testList(t *testing.T, ctx context.Context, st store.Store, _ Backend) {
	before := time.Now().Add(-2 * time.Second)
	keys := []string{
		"live/cam1/s1/720p/00000001.m4s",
		"live/cam1/s1/720p/00000002.m4s",
		"live/cam1/s1/720p/init.mp4",
		"live/cam1/s1/index.m3u8",
		"live/cam1/s2/360p/00000001.m4s",
		"live/cam10/s1/index.m3u8",
		"live/cam1.old",
		"vod/cam1.mp4",
	}
	for i, k := range keys {
		mustPut(t, ctx, st, k, bytes.Repeat([]byte{'x'}, i+1))
	}
	after := time.Now().Add(2 * time.Second)

	objs, err := st.List(ctx, "")
	if err != nil {
		t.Fatalf("List(\"\"): %v", err)
	}
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	if got := objectKeys(objs); !slices.Equal(got, sorted) {
		t.Errorf("List(\"\") = %q, want %q", got, sorted)
	}
	for _, o := range objs {
		want := int64(slices.Index(keys, o.Key) + 1)
		if o.Size != want {
			t.Errorf("%s: Size = %d, want %d", o.Key, o.Size, want)
		}
		if o.Modified.Before(before) || o.Modified.After(after) {
			t.Errorf("%s: Modified = %v, want between %v and %v", o.Key, o.Modified, before, after)
		}
	}

	cases := []struct {
		prefix string
		want   []string
	}{
		{"live/cam1/", []string{
			"live/cam1/s1/720p/00000001.m4s", "live/cam1/s1/720p/00000002.m4s", "live/cam1/s1/720p/init.mp4",
			"live/cam1/s1/index.m3u8", "live/cam1/s2/360p/00000001.m4s",
		}},
		{"live/cam1/s1/720p/", []string{"live/cam1/s1/720p/00000001.m4s", "live/cam1/s1/720p/00000002.m4s", "live/cam1/s1/720p/init.mp4"}},
		{"live/cam1/s1/720p/0000000", []string{"live/cam1/s1/720p/00000001.m4s", "live/cam1/s1/720p/00000002.m4s"}},
		{"live/cam1", []string{ // a string prefix, as in S3
			"live/cam1.old", "live/cam1/s1/720p/00000001.m4s", "live/cam1/s1/720p/00000002.m4s", "live/cam1/s1/720p/init.mp4",
			"live/cam1/s1/index.m3u8", "live/cam1/s2/360p/00000001.m4s", "live/cam10/s1/index.m3u8",
		}},
		{"live/cam1/s1/index.m3u8", []string{"live/cam1/s1/index.m3u8"}},
		{"live/cam2/", nil},
		{"nothing", nil},
	}
	for _, c := range cases {
		objs, err := st.List(ctx, c.prefix)
		if err != nil {
			t.Errorf("List(%q): %v", c.prefix, err)
			continue
		}
		if got := objectKeys(objs); !slices.Equal(got, c.want) {
			t.Errorf("List(%q) = %q, want %q", c.prefix, got, c.want)
		}
	}
}

func objectKeys(objs []store.Object) []string {
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	return keys
}

func testBadKeys(t *testing.T, ctx context.Context, st store.Store, _ Backend) {
	for _, key := range BadKeys {
		if err := st.Put(ctx, key, []byte("x"), ""); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("Put(%.40q) error = %v, want ErrBadKey", key, err)
		}
		if _, err := st.Get(ctx, key); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("Get(%.40q) error = %v, want ErrBadKey", key, err)
		}
		if err := st.Delete(ctx, key); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("Delete(%.40q) error = %v, want ErrBadKey", key, err)
		}
	}
	for _, prefix := range []string{"/live", "../", "live/../", "live//", `live\`, "live/\x00"} {
		if _, err := st.List(ctx, prefix); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("List(%q) error = %v, want ErrBadKey", prefix, err)
		}
	}
	objs, err := st.List(ctx, "")
	if err != nil || len(objs) != 0 {
		t.Errorf("List after refused puts = %v, %v; want nothing stored", objs, err)
	}
}

func testContentTypes(t *testing.T, ctx context.Context, st store.Store, b Backend) {
	cases := []struct{ key, contentType string }{
		{"live/cam1/s1/index.m3u8", "application/vnd.apple.mpegurl"},
		{"live/cam1/index.mpd", "application/dash+xml"},
		{"live/cam1/s1/720p/00000001.m4s", "video/iso.segment"},
		{"live/cam1/s1/720p/init.mp4", "video/mp4"},
		{"live/cam1/s1/audio/00000001.m4s", "audio/mp4"},
		{"live/cam1/thumb", ""},
	}
	for _, c := range cases {
		data := []byte("data of " + c.key)
		if err := st.Put(ctx, c.key, data, c.contentType); err != nil {
			t.Fatalf("Put(%q, %q): %v", c.key, c.contentType, err)
		}
		if got := mustGet(t, ctx, st, c.key); !bytes.Equal(got, data) {
			t.Errorf("Get(%q) = %q, want %q", c.key, got, data)
		}
		if b.ContentType == nil {
			continue
		}
		want := c.contentType
		if want == "" {
			want = "application/octet-stream"
		}
		if got := b.ContentType(t, c.key); got != want {
			t.Errorf("content type of %q = %q, want %q", c.key, got, want)
		}
	}
}

func testConcurrent(t *testing.T, ctx context.Context, st store.Store, _ Backend) {
	const key = "live/cam1/s1/index.m3u8"
	const writers, rounds = 4, 5
	versions := make(map[string]bool)
	for w := range writers {
		for r := range rounds {
			versions[fmt.Sprintf("writer %d round %d %s", w, r, strings.Repeat("#", 4096*(w+1)))] = true
		}
	}
	mustPut(t, ctx, st, key, []byte(fmt.Sprintf("writer 0 round 0 %s", strings.Repeat("#", 4096))))

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				v := fmt.Sprintf("writer %d round %d %s", w, r, strings.Repeat("#", 4096*(w+1)))
				if err := st.Put(ctx, key, []byte(v), "application/vnd.apple.mpegurl"); err != nil {
					t.Errorf("Put: %v", err)
				}
			}
		})
	}
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			got, err := st.Get(ctx, key)
			if err != nil {
				t.Errorf("Get during puts: %v", err)
				return
			}
			if !versions[string(got)] {
				t.Errorf("Get during puts returned %d bytes that no Put wrote", len(got))
				return
			}
		}
	})
	wg.Wait()
	close(stop)
	readers.Wait()
}
