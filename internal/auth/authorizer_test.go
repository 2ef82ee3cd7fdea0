package auth_test

import (
	"github.com/livegrid/livegrid/coordinator/ingest"
	"github.com/livegrid/livegrid/internal/auth"
)

// Policy is what RTMP ingest asks before a publish.
var _ ingest.Authorizer = (*auth.Policy)(nil)
