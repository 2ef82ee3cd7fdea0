// Package auth is livegrid's access control, shared by the edge and the
// origin (play) and by RTMP ingest (publish): signed URLs, stream keys,
// referer lists, CIDR and GeoIP restrictions and an HTTP callback,
// combined by a Policy in a fixed order.
//
// # Signed URLs
//
// A signed URL carries
//
//	?expires=UNIX&token=HEX[&ip=IP_OR_CIDR][&stream=NAME]
//
// token is the lowercase hex HMAC-SHA256, keyed by a secret, of the
// canonical string: five lines joined by "\n", no trailing newline:
//
//	livegrid-v1
//	ACTION          play or publish
//	RESOURCE        path:/live/s/index.m3u8   (a path-scoped token)
//	                stream:s                  (a stream-scoped token)
//	EXPIRES         the expires parameter, as sent
//	IP              the ip parameter, as sent, or empty
//
// A path-scoped token covers one URL path (the decoded path, as in
// http.Request.URL.Path). A stream-scoped token carries stream=NAME and
// covers every path of that stream, /live/NAME, /live/NAME.flv and
// everything under /live/NAME/, so one token serves a whole HLS or DASH
// session. A publish token is always stream-scoped; because the action is
// signed, a play token never authorises a publish. No field may contain a
// newline. The token is valid while now is before EXPIRES. Verifiers hold
// a list of secrets: the first signs, all verify, so secrets rotate by
// prepending the new one and dropping the old one once its tokens expired.
//
// Example (secret "s3cret", stream "cam1", expires 1767225600, no ip):
//
//	livegrid-v1\nplay\nstream:cam1\n1767225600\n
//
// signed in a shell as
//
//	printf 'livegrid-v1\nplay\nstream:cam1\n1767225600\n' |
//	    openssl dgst -sha256 -hmac s3cret
//
// gives the URL
//
//	/live/cam1/index.m3u8?expires=1767225600&stream=cam1&token=cd91615729cb426ee66a82434d41e31c372411b8b1203cdc2ba04536caa83fa4
package auth
