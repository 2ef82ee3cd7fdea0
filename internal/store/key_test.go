package store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/livegrid/livegrid/internal/store"
	"github.com/livegrid/livegrid/internal/store/storetest"
)

func TestCheckKey(t *testing.T) {
	good := []string{
		"a",
		"live/cam1/s1/720p/00000042.m4s",
		"live/cam1/s1/index.m3u8",
		"live/cam1..old/x", // ".." inside a name is not a path step
		"live/.hidden",
		"live/straße/ü.m4s",
		storetest.LongKey,
	}
	for _, k := range good {
		if err := store.CheckKey(k); err != nil {
			t.Errorf("CheckKey(%.40q) = %v, want nil", k, err)
		}
	}
	for _, k := range storetest.BadKeys {
		if err := store.CheckKey(k); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("CheckKey(%.40q) = %v, want ErrBadKey", k, err)
		}
	}
	if err := store.CheckKey(strings.Repeat("a", 5000)); len(err.Error()) > 200 {
		t.Errorf("error for a long key is %d bytes long", len(err.Error()))
	}
}

func TestCheckPrefix(t *testing.T) {
	tests := []struct {
		prefix string
		ok     bool
	}{
		{"", true},
		{"live/", true},
		{"live/cam1", true},
		{"live/cam1/s1/", true},
		{"/", false},
		{"/live", false},
		{"live//", false},
		{"../", false},
		{"live/../", false},
		{`live\`, false},
	}
	for _, tc := range tests {
		err := store.CheckPrefix(tc.prefix)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, store.ErrBadKey)) {
			t.Errorf("CheckPrefix(%q) = %v, want ok=%v", tc.prefix, err, tc.ok)
		}
	}
}
