package coordinator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/livegrid/livegrid/internal/config"
	"github.com/livegrid/livegrid/internal/hub"
	"github.com/livegrid/livegrid/profiles"
)

// ladderOverrides holds the ladders set per stream through the API
// (PUT /api/v1/streams/{stream}/ladder). They beat transcode.rules from
// the stream's next publish on: a live session keeps its ladder, since
// its renditions are already listed. They live in this coordinator's
// memory.
type ladderOverrides struct {
	mu sync.Mutex
	m  map[string]string
}

// profileFor is the ladder of stream: the API's, else the config's rules.
func (o *ladderOverrides) profileFor(cfg *config.Config, stream string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if p, ok := o.m[stream]; ok {
		return p
	}
	return cfg.Transcode.ProfileFor(stream)
}

// handler serves PUT {"profile": "mobile"} and DELETE on
// /api/v1/streams/{stream}/ladder. Only builtin ladders can be named: a
// file path from an API caller would let it read the coordinator's files.
func (o *ladderOverrides) handler(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("stream")
	if err := hub.ValidateName(name); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	switch r.Method {
	case http.MethodPut:
		var body struct {
			Profile string `json:"profile"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "body must be {\"profile\": NAME}: " + err.Error()})
			return
		}
		builtins := profiles.BuiltinNames()
		if !slices.Contains(builtins, body.Profile) {
			writeJSON(w, http.StatusBadRequest, apiError{Error: fmt.Sprintf("'profile' must be a builtin ladder (%s), got %q", strings.Join(builtins, ", "), body.Profile)})
			return
		}
		o.mu.Lock()
		if o.m == nil {
			o.m = map[string]string{}
		}
		o.m[name] = body.Profile
		o.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]string{"stream": name, "profile": body.Profile, "applies": "from the stream's next publish"})
	case http.MethodDelete:
		o.mu.Lock()
		_, ok := o.m[name]
		delete(o.m, name)
		o.mu.Unlock()
		if !ok {
			writeJSON(w, http.StatusNotFound, apiError{Error: fmt.Sprintf("stream %q has no ladder set through the API", name)})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "PUT, DELETE")
		writeJSON(w, http.StatusMethodNotAllowed, apiError{Error: "use PUT or DELETE"})
	}
}
