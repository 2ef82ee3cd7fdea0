package store

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
)

// Location is a parsed store URL.
type Location struct {
	// Scheme is "file" or "s3".
	Scheme string
	// Dir is the root folder of a file store.
	Dir string
	// Bucket is the S3 bucket.
	Bucket string
	// Endpoint is the S3 server as host[:port]; empty means AWS S3.
	Endpoint string
	// Secure is true when the endpoint is reached over HTTPS.
	Secure bool
	// Region is the S3 region; empty lets the client discover it.
	Region string
	// Prefix is prepended to every key in the bucket ("" or ending in "/").
	Prefix string
}

// s3Keys are the query keys an s3:// URL accepts.
var s3Keys = []string{"endpoint", "region", "prefix"}

// ParseURL parses a store URL:
//
//	file:///var/lib/livegrid     a local folder (file:data is relative)
//	s3://bucket?endpoint=http://127.0.0.1:9000&region=us-east-1&prefix=livegrid/
//
// Errors wrap ErrBadURL and name the part or query key at fault. Messages
// never repeat user information, which may hold a secret.
func ParseURL(raw string) (Location, error) {
	if raw == "" {
		return Location{}, fmt.Errorf("%w: empty", ErrBadURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, which may hold a secret.
		return Location{}, fmt.Errorf("%w: not a URL", ErrBadURL)
	}
	if u.User != nil {
		return Location{}, fmt.Errorf("%w: user information in the URL is not supported; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", ErrBadURL)
	}
	if u.Fragment != "" {
		return Location{}, fmt.Errorf("%w: fragment %q is not supported", ErrBadURL, u.Fragment)
	}
	switch u.Scheme {
	case "file":
		return parseFile(u)
	case "s3":
		return parseS3(u)
	case "":
		return Location{}, fmt.Errorf("%w: no scheme; write file:///path or s3://bucket", ErrBadURL)
	default:
		return Location{}, fmt.Errorf("%w: scheme %q is not supported; use file or s3", ErrBadURL, u.Scheme)
	}
}

func parseFile(u *url.URL) (Location, error) {
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			return Location{}, fmt.Errorf("%w: bad query: %v", ErrBadURL, err)
		}
		if len(q) > 0 {
			return Location{}, fmt.Errorf("%w: unknown query key '%s' (a file URL takes none)", ErrBadURL, sortedKeys(q)[0])
		}
	}
	dir := u.Path
	switch {
	case u.Opaque != "": // file:data
		dir = u.Opaque
		if strings.HasPrefix(dir, "/") {
			return Location{}, fmt.Errorf("%w: file URL %q: write file:///path or file:relative", ErrBadURL, u.String())
		}
	case u.Host != "" && u.Host != "localhost":
		return Location{}, fmt.Errorf("%w: file URL host %q: only file:///path (or localhost) is supported", ErrBadURL, u.Host)
	}
	if dir == "" {
		return Location{}, fmt.Errorf("%w: file URL has no path", ErrBadURL)
	}
	return Location{Scheme: "file", Dir: filepath.Clean(filepath.FromSlash(dir))}, nil
}

func parseS3(u *url.URL) (Location, error) {
	loc := Location{Scheme: "s3", Bucket: u.Host}
	if err := checkBucket(loc.Bucket); err != nil {
		return Location{}, err
	}
	if u.Path != "" && u.Path != "/" {
		return Location{}, fmt.Errorf("%w: path %q after the bucket is not supported; use the 'prefix' query key", ErrBadURL, u.Path)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Location{}, fmt.Errorf("%w: bad query: %v", ErrBadURL, err)
	}
	for _, k := range sortedKeys(q) {
		if !slices.Contains(s3Keys, k) {
			return Location{}, fmt.Errorf("%w: unknown query key '%s' (accepted: %s)", ErrBadURL, k, strings.Join(s3Keys, ", "))
		}
		if len(q[k]) > 1 {
			return Location{}, fmt.Errorf("%w: query key '%s' given %d times", ErrBadURL, k, len(q[k]))
		}
	}
	if q.Has("endpoint") {
		loc.Endpoint, loc.Secure, err = parseEndpoint(q.Get("endpoint"))
		if err != nil {
			return Location{}, err
		}
	} else {
		loc.Endpoint, loc.Secure = "s3.amazonaws.com", true
	}
	if q.Has("region") {
		loc.Region = q.Get("region")
		if loc.Region == "" || strings.ContainsAny(loc.Region, "/ ?#") {
			return Location{}, fmt.Errorf("%w: 'region' %q is not a region name", ErrBadURL, loc.Region)
		}
	}
	if q.Has("prefix") {
		p := strings.Trim(q.Get("prefix"), "/")
		if p == "" {
			return Location{}, fmt.Errorf("%w: 'prefix' is empty", ErrBadURL)
		}
		if err := CheckKey(p); err != nil {
			return Location{}, fmt.Errorf("%w: 'prefix': %v", ErrBadURL, err)
		}
		loc.Prefix = p + "/"
	}
	return loc, nil
}

// parseEndpoint turns "http://host:9000" into ("host:9000", false).
func parseEndpoint(raw string) (hostport string, secure bool, err error) {
	e, perr := url.Parse(raw)
	switch {
	case raw == "":
		return "", false, fmt.Errorf("%w: 'endpoint' is empty", ErrBadURL)
	case perr == nil && e.User != nil:
		return "", false, fmt.Errorf("%w: 'endpoint' must not hold user information; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", ErrBadURL)
	case perr != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "":
		return "", false, fmt.Errorf("%w: 'endpoint' %q must be http://host[:port] or https://host[:port]", ErrBadURL, raw)
	case (e.Path != "" && e.Path != "/") || e.RawQuery != "" || e.Fragment != "":
		return "", false, fmt.Errorf("%w: 'endpoint' %q must have no path or query", ErrBadURL, raw)
	}
	return e.Host, e.Scheme == "https", nil
}

// checkBucket applies S3's bucket naming rules.
func checkBucket(b string) error {
	if b == "" {
		return fmt.Errorf("%w: s3 URL has no bucket; write s3://bucket", ErrBadURL)
	}
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("%w: bucket %q must be 3 to 63 characters", ErrBadURL, b)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return fmt.Errorf("%w: bucket %q may hold only lower-case letters, digits, '-' and '.'", ErrBadURL, b)
		}
	}
	first, last := b[0], b[len(b)-1]
	if first == '-' || first == '.' || last == '-' || last == '.' || strings.Contains(b, "..") {
		return fmt.Errorf("%w: bucket %q must start and end with a letter or digit and have no '..'", ErrBadURL, b)
	}
	return nil
}

func sortedKeys(q url.Values) []string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
