package coordinator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/livegrid/livegrid/coordinator/ingest"
)

// maxPullBody bounds a POST /api/v1/pulls body.
const maxPullBody = 1 << 20

// pullAPI is the management API for pulled streams:
//
//	POST   /api/v1/pulls           {"stream": "...", "url": "..."} starts a pull
//	GET    /api/v1/pulls           lists the pulls with their state
//	GET    /api/v1/pulls/{stream}  one pull
//	DELETE /api/v1/pulls/{stream}  stops one
//
// Errors are JSON {"error": "..."}, with "field" when one field is at
// fault.
type pullAPI struct {
	puller *ingest.Puller
	log    *slog.Logger
}

// registerPullAPI adds the pull routes to mux.
func registerPullAPI(mux *http.ServeMux, p *ingest.Puller, log *slog.Logger) {
	a := &pullAPI{puller: p, log: log.With("component", "pull-api")}
	mux.HandleFunc("/api/v1/pulls", a.collection)
	mux.HandleFunc("/api/v1/pulls/{stream}", a.item)
}

// pullRequest is the body of POST /api/v1/pulls.
type pullRequest struct {
	Stream string `json:"stream"`
	URL    string `json:"url"`
}

// apiPull is one pull as the API shows it.
type apiPull struct {
	Stream string `json:"stream"`
	// URL is the source with its password and query values masked.
	URL       string    `json:"url"`
	State     string    `json:"state"` // connecting, live or retrying
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error,omitempty"`
	Failures  int       `json:"failures"`
	Sessions  int       `json:"sessions"`
}

type apiPullList struct {
	Pulls []apiPull `json:"pulls"`
}

type apiFieldError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func toAPIPull(s ingest.PullStatus) apiPull {
	return apiPull{Stream: s.Stream, URL: s.URL, State: string(s.State), Since: s.Since.UTC(),
		LastError: s.LastError, Failures: s.Failures, Sessions: s.Sessions}
}

func (a *pullAPI) collection(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		list := []apiPull{}
		for _, s := range a.puller.List() {
			list = append(list, toAPIPull(s))
		}
		writeJSON(w, http.StatusOK, apiPullList{Pulls: list})
	case http.MethodPost:
		a.start(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeJSON(w, http.StatusMethodNotAllowed, apiFieldError{Error: "method " + r.Method + " not allowed"})
	}
}

func (a *pullAPI) item(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("stream")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		for _, s := range a.puller.List() {
			if s.Stream == name {
				writeJSON(w, http.StatusOK, toAPIPull(s))
				return
			}
		}
		writeJSON(w, http.StatusNotFound, apiFieldError{Error: fmt.Sprintf("no pull of stream %q", name)})
	case http.MethodDelete:
		if err := a.puller.Stop(name); err != nil {
			writeJSON(w, http.StatusNotFound, apiFieldError{Error: fmt.Sprintf("no pull of stream %q", name)})
			return
		}
		a.log.Info("pull stopped through the API", "stream", name, "remote", r.RemoteAddr)
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, HEAD, DELETE")
		writeJSON(w, http.StatusMethodNotAllowed, apiFieldError{Error: "method " + r.Method + " not allowed"})
	}
}

// start handles POST /api/v1/pulls.
func (a *pullAPI) start(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeJSON(w, http.StatusUnsupportedMediaType, apiFieldError{Error: "the body must be application/json"})
			return
		}
	}
	req, status, err := decodePullRequest(http.MaxBytesReader(w, r.Body, maxPullBody))
	if err != nil {
		writeJSON(w, status, err)
		return
	}
	if err := a.puller.Start(req.Stream, req.URL); err != nil {
		var fe *ingest.FieldError
		switch {
		case errors.As(err, &fe):
			writeJSON(w, http.StatusBadRequest, apiFieldError{Error: fe.Error(), Field: fe.Field})
		case errors.Is(err, ingest.ErrPullExists):
			writeJSON(w, http.StatusConflict, apiFieldError{Error: fmt.Sprintf("stream %q is already pulled", req.Stream), Field: "stream"})
		case errors.Is(err, ingest.ErrStreamLive):
			writeJSON(w, http.StatusConflict, apiFieldError{Error: fmt.Sprintf("stream %q is live from a publisher", req.Stream), Field: "stream"})
		case errors.Is(err, ingest.ErrPullerClosed):
			writeJSON(w, http.StatusServiceUnavailable, apiFieldError{Error: "shutting down"})
		default:
			writeJSON(w, http.StatusInternalServerError, apiFieldError{Error: "pull not started"})
		}
		return
	}
	a.log.Info("pull started through the API", "stream", req.Stream, "remote", r.RemoteAddr)
	w.Header().Set("Location", "/api/v1/pulls/"+url.PathEscape(req.Stream))
	for _, s := range a.puller.List() {
		if s.Stream == req.Stream {
			writeJSON(w, http.StatusCreated, toAPIPull(s))
			return
		}
	}
	// Stopped between Start and List.
	writeJSON(w, http.StatusCreated, apiPull{Stream: req.Stream, State: string(ingest.PullConnecting)})
}

// decodePullRequest reads exactly one JSON object with no unknown
// fields. Its error is the response body, with the status to send.
func decodePullRequest(body io.Reader) (pullRequest, int, *apiFieldError) {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var req pullRequest
	err := dec.Decode(&req)
	if err == nil {
		// Anything after the object but white space is refused.
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = errTrailing
			if terr != nil && isTooLarge(terr) {
				err = terr
			}
		}
	}
	if err == nil {
		return req, 0, nil
	}
	var (
		typeErr   *json.UnmarshalTypeError
		syntaxErr *json.SyntaxError
	)
	switch {
	case isTooLarge(err):
		return req, http.StatusRequestEntityTooLarge, &apiFieldError{Error: fmt.Sprintf("the body is over %d bytes", maxPullBody)}
	case errors.Is(err, io.EOF):
		return req, http.StatusBadRequest, &apiFieldError{Error: `the body must be a JSON object {"stream": "...", "url": "..."}`}
	case errors.As(err, &typeErr):
		if typeErr.Field != "" {
			return req, http.StatusBadRequest, &apiFieldError{Error: fmt.Sprintf("'%s' must be a string", typeErr.Field), Field: typeErr.Field}
		}
		return req, http.StatusBadRequest, &apiFieldError{Error: `the body must be a JSON object {"stream": "...", "url": "..."}`}
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return req, http.StatusBadRequest, &apiFieldError{Error: "malformed JSON: " + err.Error()}
	case errors.Is(err, errTrailing):
		return req, http.StatusBadRequest, &apiFieldError{Error: "the body must hold one JSON object and nothing after it"}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field := strings.Trim(name, `"`)
		return req, http.StatusBadRequest, &apiFieldError{
			Error: fmt.Sprintf("'%s' is not a known field (known: stream, url)", field), Field: field}
	}
	return req, http.StatusBadRequest, &apiFieldError{Error: "bad body: " + err.Error()}
}

var errTrailing = errors.New("trailing data after the JSON object")

func isTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
