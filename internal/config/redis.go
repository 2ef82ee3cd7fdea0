package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisQueryKeys are the redis.url query parameters UniversalOptions
// carries over; go-redis knows more, which would be silently lost.
var redisQueryKeys = []string{
	"db", "client_name", "dial_timeout", "read_timeout", "write_timeout",
	"pool_size", "max_retries", "skip_verify",
	// Sentinel: the master's name, more sentinels, the master's credentials
	// (the URL's user information is the sentinels').
	"master_name", "addr", "username", "password",
}

// UniversalOptions turns redis.url into client options: one server, or
// with a master_name query parameter the sentinels that find the master.
// The error never repeats the URL, which may hold a password.
func (r Redis) UniversalOptions() (*redis.UniversalOptions, error) {
	if r.URL == "" {
		return nil, errors.New("is empty")
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return nil, errors.New("is not a URL") // url.Error repeats the URL
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("must be a redis:// or rediss:// URL, got scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("must name a host: redis://host:6379")
	}
	q := u.Query()
	sentinel := q.Has("master_name")
	for k := range q {
		if !slices.Contains(redisQueryKeys, k) {
			return nil, fmt.Errorf("query parameter %q is not supported (supported: %s)", k, strings.Join(redisQueryKeys, ", "))
		}
		if !sentinel && (k == "addr" || k == "username" || k == "password") {
			return nil, fmt.Errorf("query parameter %q needs master_name (Sentinel)", k)
		}
	}
	if sentinel {
		o, err := redis.ParseFailoverURL(r.URL)
		if err != nil {
			return nil, errors.New(strings.TrimPrefix(err.Error(), "redis: "))
		}
		if o.MasterName == "" {
			return nil, errors.New("query parameter \"master_name\" is empty")
		}
		return &redis.UniversalOptions{
			Addrs:            o.SentinelAddrs,
			MasterName:       o.MasterName,
			SentinelUsername: o.SentinelUsername,
			SentinelPassword: o.SentinelPassword,
			Username:         o.Username,
			Password:         o.Password,
			DB:               o.DB,
			ClientName:       o.ClientName,
			DialTimeout:      o.DialTimeout,
			ReadTimeout:      o.ReadTimeout,
			WriteTimeout:     o.WriteTimeout,
			PoolSize:         o.PoolSize,
			MaxRetries:       o.MaxRetries,
			TLSConfig:        o.TLSConfig,
		}, nil
	}
	o, err := redis.ParseURL(r.URL)
	if err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "redis: "))
	}
	return &redis.UniversalOptions{
		Addrs:        []string{o.Addr},
		Username:     o.Username,
		Password:     o.Password,
		DB:           o.DB,
		ClientName:   o.ClientName,
		DialTimeout:  o.DialTimeout,
		ReadTimeout:  o.ReadTimeout,
		WriteTimeout: o.WriteTimeout,
		PoolSize:     o.PoolSize,
		MaxRetries:   o.MaxRetries,
		TLSConfig:    o.TLSConfig,
	}, nil
}
