// Package edge is livegrid's viewer-facing relay. It serves the HLS and
// DASH presentations of one or more origins (coordinators or standalone
// nodes) from memory:
//
//   - an LRU object cache bounded by edge.cache_bytes: media and init
//     segments are immutable and kept until evicted, playlists for a
//     fraction of a segment, origin 404s for half a second;
//   - request coalescing: viewers asking for the same object while it is
//     being fetched wait for that one origin request;
//   - origin failover: origins are tried in order, a failed or slow
//     request moves on to the next within the same viewer request, and a
//     prober brings dead origins back;
//   - the play policy of internal/auth in front of every /live/ path.
//
// HTTP-FLV and RTMP play are plugged in through Edge.FLV and Edge.RTMP,
// viewer statistics through Edge.Observe. Edge is the composition root of
// the `livegrid edge` role.
package edge
