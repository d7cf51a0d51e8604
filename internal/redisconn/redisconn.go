// Package redisconn turns a Redis URL (RESUMER_REDIS_URL) into a go-redis universal client
// for one of three deployments: a single node, a Redis Cluster or a primary managed by Redis
// Sentinel. It parses with go-redis's own parsers (redis.ParseURL, redis.ParseClusterURL,
// redis.ParseFailoverURL) and builds the client with redis.NewUniversalClient, so every option
// those parsers know (timeouts, pool sizes, TLS) works in the URL.
//
// The accepted forms:
//
//	redis://[user:password@]host:6379[/db][?option=value...]          single node
//	rediss://...                                                       single node over TLS
//	unix://[user:password@]/path/to/redis.sock[?db=N]                  single node, Unix socket
//	redis://[user:password@]host1:6379?addr=host2:6379&addr=host3:6379  Redis Cluster (seeds)
//	redis+cluster://[user:password@]host1:6379[?addr=...]              Redis Cluster, one seed is enough
//	rediss://...?addr=... or rediss+cluster://...                      Redis Cluster over TLS
//	redis+sentinel://[user:password@]s1:26379,s2:26379,s3:26379/mymaster[/db]
//	    [?sentinel_username=u&sentinel_password=p&option=value...]     primary named mymaster, found through Sentinel
//	rediss+sentinel://...                                              the same over TLS (Sentinels and Redis)
//
// A rediss URL verifies the servers' certificates against the system's roots; a private
// certificate authority and a client certificate (for tls-auth-clients yes) are files, given
// to NewWithTLS as TLSFiles (RESUMER_REDIS_TLS_CA_FILE, _CERT_FILE and _KEY_FILE).
//
// In the Sentinel form the user and password before '@' are the Redis primary's and replicas'
// (AUTH to the data nodes); the Sentinels' own credentials, when they have any, are the
// sentinel_username and sentinel_password query parameters.
package redisconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Mode is the kind of Redis deployment a URL names.
type Mode string

// The deployments a URL can name.
const (
	Single   Mode = "single"
	Cluster  Mode = "cluster"
	Sentinel Mode = "sentinel"
)

// Parse reads rawURL (see the package documentation for the forms) into options for
// redis.NewUniversalClient and the deployment mode they select. It fails on an unknown scheme,
// an option go-redis does not know, a malformed address, a Sentinel URL without a master name
// or a Cluster URL naming a database other than 0. The error never contains the URL, which
// may hold a password.
func Parse(rawURL string) (*redis.UniversalOptions, Mode, error) {
	scheme, _, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, "", errors.New("want a URL such as redis://host:6379/0 (see the documentation for cluster and sentinel forms)")
	}
	switch strings.ToLower(scheme) {
	case "redis+sentinel", "rediss+sentinel":
		return parseSentinel(rawURL)
	case "redis+cluster", "rediss+cluster":
		return parseCluster(strings.TrimSuffix(strings.ToLower(scheme), "+cluster") + rawURL[len(scheme):])
	case "redis", "rediss":
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, "", clean(err)
		}
		if u.Query().Has("addr") {
			return parseCluster(rawURL)
		}
		return parseSingle(rawURL)
	case "unix":
		return parseSingle(rawURL)
	}
	return nil, "", fmt.Errorf("unknown scheme %q: want redis, rediss, unix, redis+cluster, rediss+cluster, redis+sentinel or rediss+sentinel", scheme)
}

// New parses rawURL (see Parse) and returns a client for it: a *redis.Client for a single
// node or Sentinel, a *redis.ClusterClient for a cluster. It does not contact Redis; the
// first command does, and fails when Redis is unreachable. The caller closes the client.
// A rediss URL verifies servers against the system's roots; NewWithTLS takes a private CA
// and a client certificate.
func New(rawURL string) (redis.UniversalClient, Mode, error) {
	return NewWithTLS(rawURL, TLSFiles{})
}

// newClient makes the universal client for opts, with reloadOnFailure on a cluster client.
func newClient(opts *redis.UniversalOptions) redis.UniversalClient {
	c := redis.NewUniversalClient(opts)
	if cc, ok := c.(*redis.ClusterClient); ok {
		cc.AddHook(reloadOnFailure{cc})
	}
	return c
}

// reloadOnFailure is a hook of a cluster client that asks for the slot map again whenever a
// command fails on the connection (a node died) or a node says the cluster is down or it is
// no longer a primary. go-redis follows MOVED and ASK by itself, but after a primary dies it
// keeps dialling the dead address until its next periodic reload; with this hook the client
// finds the promoted replica as soon as the cluster has one.
type reloadOnFailure struct{ cc *redis.ClusterClient }

func (h reloadOnFailure) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h reloadOnFailure) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.check(ctx, err)
		return err
	}
}

func (h reloadOnFailure) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.check(ctx, err)
		for _, c := range cmds {
			if h.check(ctx, c.Err()) {
				break
			}
		}
		return err
	}
}

// check reloads the slot map when err says the topology may have changed, and reports
// whether it did.
func (h reloadOnFailure) check(ctx context.Context, err error) bool {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		if !strings.HasPrefix(msg, "CLUSTERDOWN") && !strings.HasPrefix(msg, "READONLY") && !strings.HasPrefix(msg, "MASTERDOWN") {
			return false
		}
	}
	h.cc.ReloadState(ctx)
	return true
}

// Ping checks that the deployment can serve commands: for a cluster client every primary the
// client knows must answer (a primary that died and has not yet been replaced fails it), for
// any other client the one node it talks to (through Sentinel: the current primary). The
// error names the failing node.
func Ping(ctx context.Context, c redis.UniversalClient) error {
	if cc, ok := c.(*redis.ClusterClient); ok {
		err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			if err := node.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("ping redis %s: %w", node.Options().Addr, err)
			}
			return nil
		})
		if err != nil {
			// A failover or resharding may have changed the primaries: ask for the slot map
			// again, so that the next check (and command) sees the new ones.
			cc.ReloadState(ctx)
		}
		return err
	}
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

func parseSingle(rawURL string) (*redis.UniversalOptions, Mode, error) {
	o, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, "", clean(err)
	}
	u := &redis.UniversalOptions{}
	copyOptions(u, o)
	u.Addrs = []string{o.Addr}
	if o.Network == "unix" {
		path := o.Addr
		u.Dialer = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
	}
	return u, Single, nil
}

func parseCluster(rawURL string) (*redis.UniversalOptions, Mode, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", clean(err)
	}
	if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
		return nil, "", fmt.Errorf("redis cluster: database %q: a cluster has only database 0", p)
	}
	u.Path = ""
	o, err := redis.ParseClusterURL(u.String())
	if err != nil {
		return nil, "", clean(err)
	}
	if o.TLSConfig != nil {
		// ParseClusterURL names the seed as the server of every node; verify each node's
		// connection against the address it dialled instead.
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	uo := &redis.UniversalOptions{}
	copyOptions(uo, o)
	uo.Addrs = o.Addrs
	uo.IsClusterMode = true
	return uo, Cluster, nil
}

// parseSentinel rewrites the documented redis+sentinel form into the URL redis.ParseFailoverURL
// reads (Sentinel credentials in the user info, the primary's in username/password
// parameters, the other Sentinels as addr parameters) and parses that.
func parseSentinel(rawURL string) (*redis.UniversalOptions, Mode, error) {
	scheme, rest, _ := strings.Cut(rawURL, "://")
	tlsScheme := strings.HasPrefix(strings.ToLower(scheme), "rediss")
	authority, path, _ := strings.Cut(rest, "/")
	path, rawQuery, _ := strings.Cut(path, "?")
	if i := strings.Index(authority, "?"); i >= 0 { // no path: redis+sentinel://host?x
		authority, rawQuery = authority[:i], authority[i+1:]
	}
	var userinfo string
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, authority = authority[:i], authority[i+1:]
	}
	var sentinels []string
	for _, a := range strings.Split(authority, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(a, "26379")
		}
		if h, p, err := net.SplitHostPort(a); err != nil || h == "" || p == "" {
			return nil, "", fmt.Errorf("redis sentinel: bad sentinel address %q", a)
		}
		sentinels = append(sentinels, a)
	}
	if len(sentinels) == 0 {
		return nil, "", errors.New("redis sentinel: no sentinel address")
	}
	segs := strings.FieldsFunc(path, func(r rune) bool { return r == '/' })
	if len(segs) == 0 || len(segs) > 2 {
		return nil, "", errors.New("redis sentinel: want the primary's name in the path: redis+sentinel://host:26379,host2:26379/mymaster[/db]")
	}
	master, err := url.PathUnescape(segs[0])
	if err != nil || master == "" {
		return nil, "", fmt.Errorf("redis sentinel: bad master name %q", segs[0])
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, "", clean(err)
	}
	for _, k := range []string{"master_name", "addr", "username", "password", "db"} {
		if q.Has(k) {
			return nil, "", fmt.Errorf("redis sentinel: option %s is set by the URL's path or user info, not a parameter", k)
		}
	}
	if len(segs) == 2 {
		q.Set("db", segs[1])
	}
	q.Set("master_name", master)
	for _, a := range sentinels[1:] {
		q.Add("addr", a)
	}
	if userinfo != "" {
		ui, err := url.Parse("redis://" + userinfo + "@x")
		if err != nil || ui.User == nil {
			return nil, "", errors.New("redis sentinel: malformed user info")
		}
		if name := ui.User.Username(); name != "" {
			q.Set("username", name)
		}
		if pw, ok := ui.User.Password(); ok {
			q.Set("password", pw)
		}
	}
	sentinelUser, sentinelPassword := q.Get("sentinel_username"), q.Get("sentinel_password")
	q.Del("sentinel_username")
	q.Del("sentinel_password")
	fu := url.URL{Scheme: "redis", Host: sentinels[0], RawQuery: q.Encode()}
	if tlsScheme {
		fu.Scheme = "rediss"
	}
	switch {
	case sentinelPassword != "":
		fu.User = url.UserPassword(sentinelUser, sentinelPassword)
	case sentinelUser != "":
		fu.User = url.User(sentinelUser)
	}
	o, err := redis.ParseFailoverURL(fu.String())
	if err != nil {
		return nil, "", clean(err)
	}
	if o.TLSConfig != nil {
		// ParseFailoverURL names the first Sentinel as the server; the data nodes have other
		// names, so verify each connection against the host it dialled.
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.TLSConfig.InsecureSkipVerify}
	}
	uo := &redis.UniversalOptions{}
	copyOptions(uo, o)
	uo.Addrs = o.SentinelAddrs
	return uo, Sentinel, nil
}

// copyOptions sets every exported field of dst (a *redis.UniversalOptions) that has a field
// of the same name and type in *src (the options one of go-redis's parsers returned). The
// three option types share their field names, so this carries every parsed option across
// without listing them; the address fields differ and are set by the caller.
func copyOptions(dst *redis.UniversalOptions, src any) {
	sv := reflect.ValueOf(src).Elem()
	dv := reflect.ValueOf(dst).Elem()
	st := sv.Type()
	for i := range st.NumField() {
		f := st.Field(i)
		if !f.IsExported() {
			continue
		}
		d := dv.FieldByName(f.Name)
		if d.IsValid() && d.CanSet() && d.Type() == f.Type {
			d.Set(sv.Field(i))
		}
	}
}

// clean drops the URL that net/url puts into its errors (it may contain a password).
func clean(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return fmt.Errorf("malformed URL: %w", uerr.Err)
	}
	return err
}
