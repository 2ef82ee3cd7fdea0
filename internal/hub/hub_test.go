package hub

import (
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestPublishPolicy(t *testing.T) {
	tests := []struct {
		name       string
		policy     Policy
		wantErr    error
		wantEvents []string
		wantEvict  error
	}{
		{
			name:       "refuse keeps the first publisher",
			policy:     Refuse,
			wantErr:    ErrAlreadyPublishing,
			wantEvents: []string{"published test 192.0.2.1:1 <nil>"},
		},
		{
			name:   "take-over replaces the first publisher",
			policy: TakeOver,
			wantEvents: []string{
				"published test 192.0.2.1:1 <nil>",
				"unpublished test 192.0.2.1:1 " + ErrReplaced.Error(),
				"published test 192.0.2.1:2 <nil>",
			},
			wantEvict: ErrReplaced,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(Config{Policy: tt.policy})
			defer h.Close()
			var mu sync.Mutex
			var events []string
			stop := h.Watch(func(ev Event) {
				mu.Lock()
				defer mu.Unlock()
				events = append(events, ev.Type.String()+" "+ev.Name+" "+ev.Stream.Stats().PublisherAddr+" "+errString(ev.Reason))
			})
			defer stop()

			var evicted error
			first, err := h.Publish("test", Publisher{RemoteAddr: "192.0.2.1:1", Evict: func(err error) { evicted = err }})
			if err != nil {
				t.Fatal(err)
			}
			write(t, first, avcHeader(0, 1), keyframe(0, 10))
			r, err := h.Subscribe("test")
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()

			second, err := h.Publish("test", Publisher{RemoteAddr: "192.0.2.1:2"})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("second publish: %v, want %v", err, tt.wantErr)
			}
			if !errors.Is(evicted, tt.wantEvict) || (evicted == nil) != (tt.wantEvict == nil) {
				t.Errorf("first publisher evicted with %v, want %v", evicted, tt.wantEvict)
			}
			mu.Lock()
			got := slices.Clone(events)
			mu.Unlock()
			if !slices.Equal(got, tt.wantEvents) {
				t.Errorf("events\n  %q\nwant\n  %q", got, tt.wantEvents)
			}

			cur, _ := h.Lookup("test")
			werr := first.WriteTag(interFrame(33, 10))
			if tt.policy == TakeOver {
				if cur != second {
					t.Error("the name does not belong to the second publisher")
				}
				if !errors.Is(werr, ErrReplaced) {
					t.Errorf("old publisher's write: %v, want ErrReplaced", werr)
				}
				// The old session's readers see its end.
				if _, err := drain(t, r); !errors.Is(err, io.EOF) {
					t.Errorf("old reader: %v, want io.EOF", err)
				}
			} else {
				if cur != first || werr != nil {
					t.Errorf("first publisher lost the name (write: %v)", werr)
				}
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestWatchAndClose(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	h := New(Config{Now: func() time.Time { return now }})
	a := mustPublish(t, h, "a")
	mustPublish(t, h, "b")

	var got []string
	stop := h.Watch(func(ev Event) { got = append(got, ev.Type.String()+" "+ev.Name+" "+errString(ev.Reason)) })
	defer stop()
	if want := []string{"published a <nil>", "published b <nil>"}; !slices.Equal(got, want) {
		t.Fatalf("a new watcher got %q, want %q", got, want)
	}
	if st := a.Stats(); !st.Started.Equal(now) || st.PublisherAddr != "192.0.2.1:5000" {
		t.Errorf("stats %+v", st)
	}

	_ = a.Close()
	_ = a.Close()
	if err := a.WriteTag(keyframe(0, 1)); !errors.Is(err, ErrUnpublished) {
		t.Errorf("write after Close: %v, want ErrUnpublished", err)
	}
	if _, err := h.Subscribe("a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("subscribe to an unpublished stream: %v, want ErrNotFound", err)
	}
	if _, err := h.Publish("a", Publisher{}); err != nil {
		t.Errorf("the name is free again: %v", err)
	}

	h.Close()
	want := []string{"published a <nil>", "published b <nil>", "unpublished a <nil>", "published a <nil>",
		"unpublished a " + ErrClosed.Error(), "unpublished b " + ErrClosed.Error()}
	// Close ends streams in map order.
	if len(got) != len(want) || !slices.Equal(got[:4], want[:4]) || !sameSet(got[4:], want[4:]) {
		t.Errorf("events\n  %q\nwant\n  %q", got, want)
	}
	if _, err := h.Publish("c", Publisher{}); !errors.Is(err, ErrClosed) {
		t.Errorf("publish after Close: %v, want ErrClosed", err)
	}
	if n := len(h.Streams()); n != 0 {
		t.Errorf("%d streams after Close", n)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// A watcher may call back into the hub, even publish.
func TestWatcherReentry(t *testing.T) {
	h := New(Config{})
	defer h.Close()
	var got []string
	stop := h.Watch(func(ev Event) {
		got = append(got, ev.Type.String()+" "+ev.Name)
		if ev.Type == Published && ev.Name == "a" {
			if _, err := h.Publish("b", Publisher{}); err != nil {
				t.Error(err)
			}
			r, err := ev.Stream.Subscribe()
			if err != nil {
				t.Error(err)
				return
			}
			r.Close()
		}
	})
	defer stop()
	mustPublish(t, h, "a")
	if want := []string{"published a", "published b"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"test", true},
		{"Cam_01.main-hd", true},
		{"", false},
		{".hidden", false},
		{"a/b", false},
		{"a?key=1", false},
		{"sp ace", false},
		{string(make([]byte, 129)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateName(tt.name)
			if (err == nil) != tt.ok {
				t.Errorf("ValidateName(%q) = %v", tt.name, err)
			}
			if err != nil && !errors.Is(err, ErrBadName) {
				t.Errorf("error %v does not wrap ErrBadName", err)
			}
		})
	}
}

// Readers on other goroutines see every tag in order while the publisher
// writes; run with -race.
func TestConcurrentReaders(t *testing.T) {
	h := New(Config{})
	defer h.Close()
	s := mustPublish(t, h, "test")
	write(t, s, avcHeader(0, 1))
	const frames = 500
	var wg sync.WaitGroup
	counts := make([]int, 4)
	for i := range counts {
		r, err := s.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer r.Close()
			for {
				tag, err := r.Next(t.Context())
				if err != nil {
					return
				}
				if classify(tag) != kindHeader {
					counts[i]++
				}
			}
		})
	}
	for i := range frames {
		if i%30 == 0 {
			write(t, s, keyframe(uint32(i), 100))
		} else {
			write(t, s, interFrame(uint32(i), 100))
		}
	}
	_ = s.Close()
	wg.Wait()
	for i, n := range counts {
		if n != frames {
			t.Errorf("reader %d got %d frames, want %d", i, n, frames)
		}
	}
}
