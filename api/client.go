package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/znet/znet/spec"
)

// maxAnswerSize bounds how much of an answer the client reads.
const maxAnswerSize = 64 << 20

// Client speaks to znetd's API on a Unix socket (NewClient) or over https
// with a bearer token (NewHTTPSClient). It implements Service, so
// code can use a Client and a daemon interchangeably. A Client is safe for
// concurrent use and holds no connection between requests, so it needs no
// closing. Deadlines come from the context of each call.
//
// Answers are decoded leniently (unknown fields are ignored), so an older
// client keeps working with a newer daemon.
type Client struct {
	socket string // "" for an https client
	base   string // the URL requests are made against
	target string // what the client talks to, for error messages
	token  string // the bearer token sent on every request, if any
	hc     *http.Client
}

var _ Service = (*Client)(nil)

// NewClient returns a Client for the API socket at socketPath. It does not
// connect until the first call.
func NewClient(socketPath string) *Client {
	c := &Client{socket: socketPath, base: "http://znetd", target: socketPath}
	c.hc = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
		// One connection per request: the CLI makes one call, and a lab
		// polling many daemons leaves no idle connections behind.
		DisableKeepAlives: true,
	}}
	return c
}

// NewHTTPSClient returns a Client for the remote API at baseURL
// ("https://host:port"), sending token as a bearer token on every request.
// tlsCfg says which servers to trust (nil: the system's roots); TLS below
// MinTLSVersion is refused. Redirects are not followed and no proxy is
// used. It does not connect until the first call.
func NewHTTPSClient(baseURL, token string, tlsCfg *tls.Config) (*Client, error) {
	u, err := url.Parse(baseURL)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%q is not a URL (want https://host:port)", baseURL)
	case u.Scheme != "https":
		return nil, fmt.Errorf("%q: the remote API needs https://host:port", baseURL)
	case u.Host == "" || u.Port() == "":
		return nil, fmt.Errorf("%q: want https://host:port", baseURL)
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return nil, fmt.Errorf("%q: an API URL has only a host and a port", baseURL)
	case token == "":
		return nil, errors.New("the remote API needs a bearer token")
	}
	if err := checkToken(token); err != nil {
		return nil, err
	}
	if tlsCfg == nil {
		tlsCfg = &tls.Config{}
	}
	tlsCfg = tlsCfg.Clone()
	if tlsCfg.MinVersion < MinTLSVersion {
		tlsCfg.MinVersion = MinTLSVersion
	}
	base := "https://" + u.Host
	c := &Client{base: base, target: base, token: token}
	c.hc = &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:     tlsCfg,
			TLSHandshakeTimeout: 10 * time.Second,
			DisableKeepAlives:   true,
		},
		// A redirect would be a misconfigured or hostile server; the
		// token goes to base only.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// Socket returns the socket path the client talks to ("" for an https
// client).
func (c *Client) Socket() string { return c.socket }

// Target returns what the client talks to: the socket path or the https
// base URL.
func (c *Client) Target() string { return c.target }

// Reserve implements Service.
func (c *Client) Reserve(ctx context.Context, network string) (Reservation, error) {
	var res Reservation
	err := c.do(ctx, http.MethodPost, "/v1/networks/"+url.PathEscape(network)+"/reserve", nil, &res)
	return res, err
}

// ReservePort implements Service.
func (c *Client) ReservePort(ctx context.Context, network string, port int) (Reservation, error) {
	data, err := json.Marshal(ReserveRequest{ListenPort: port})
	if err != nil {
		return Reservation{}, err
	}
	var res Reservation
	err = c.do(ctx, http.MethodPost, "/v1/networks/"+url.PathEscape(network)+"/reserve", data, &res)
	return res, err
}

// Apply implements Service: it sends s as JSON.
func (c *Client) Apply(ctx context.Context, s *spec.Spec) (ApplyResult, error) {
	if s == nil {
		return ApplyResult{}, Invalid("", "no spec")
	}
	data, err := json.Marshal(s)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("encoding the spec: %w", err)
	}
	return c.ApplyRaw(ctx, data)
}

// ApplyRaw sends a spec document exactly as given (for example a file's
// bytes), so the daemon does all the checking and names the bad field.
func (c *Client) ApplyRaw(ctx context.Context, data []byte) (ApplyResult, error) {
	var res ApplyResult
	err := c.do(ctx, http.MethodPost, "/v1/networks", data, &res)
	return res, err
}

// Networks implements Service.
func (c *Client) Networks(ctx context.Context) ([]NetworkSummary, error) {
	var list []NetworkSummary
	err := c.do(ctx, http.MethodGet, "/v1/networks", nil, &list)
	return list, err
}

// Network implements Service.
func (c *Client) Network(ctx context.Context, name string) (NetworkDetail, error) {
	var d NetworkDetail
	err := c.do(ctx, http.MethodGet, "/v1/networks/"+url.PathEscape(name), nil, &d)
	return d, err
}

// DeleteNetwork implements Service.
func (c *Client) DeleteNetwork(ctx context.Context, name string, force bool) error {
	path := "/v1/networks/" + url.PathEscape(name)
	if force {
		path += "?force=true"
	}
	return c.do(ctx, http.MethodDelete, path, nil, nil)
}

// Attach implements Service.
func (c *Client) Attach(ctx context.Context, network string, req AttachRequest) (Attachment, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return Attachment{}, fmt.Errorf("encoding the attach request: %w", err)
	}
	var a Attachment
	err = c.do(ctx, http.MethodPost, "/v1/networks/"+url.PathEscape(network)+"/workloads", data, &a)
	return a, err
}

// Detach implements Service.
func (c *Client) Detach(ctx context.Context, network, name string) error {
	path := "/v1/networks/" + url.PathEscape(network) + "/workloads/" + url.PathEscape(name)
	return c.do(ctx, http.MethodDelete, path, nil, nil)
}

// Workloads implements Service.
func (c *Client) Workloads(ctx context.Context, network string) ([]Workload, error) {
	var list []Workload
	err := c.do(ctx, http.MethodGet, "/v1/networks/"+url.PathEscape(network)+"/workloads", nil, &list)
	return list, err
}

// Workload implements Service.
func (c *Client) Workload(ctx context.Context, network, name string) (Attachment, error) {
	var a Attachment
	path := "/v1/networks/" + url.PathEscape(network) + "/workloads/" + url.PathEscape(name)
	err := c.do(ctx, http.MethodGet, path, nil, &a)
	return a, err
}

// Status implements Service.
func (c *Client) Status(ctx context.Context, network string) ([]NetworkStatus, error) {
	path := "/v1/status"
	if network != "" {
		path += "/" + url.PathEscape(network)
	}
	var list []NetworkStatus
	err := c.do(ctx, http.MethodGet, path, nil, &list)
	return list, err
}

// do sends one request and decodes a 2xx answer into out (if not nil). A
// non-2xx answer becomes an *Error whose Kind follows the status.
func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	if len(body) > MaxBodySize {
		// The server would stop reading and close the connection while
		// the rest is still being written; say why instead of "broken pipe".
		return &Error{Kind: ErrInvalid, Message: errBodyTooLarge.Message}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("building the request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportError(err)
	}
	defer func() { _ = resp.Body.Close() }()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerSize))
	if err != nil {
		return fmt.Errorf("reading znetd's answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return answerError(resp.StatusCode, answer)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("decoding znetd's answer to %s %s: %w", method, path, err)
	}
	return nil
}

// transportError explains a failure to talk to the daemon at all.
func (c *Client) transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach znetd at %s (is znetd running?): %w", c.target, err)
	case errors.Is(err, syscall.EACCES) && c.socket != "":
		return fmt.Errorf("no permission to use %s (the API is root only): %w", c.socket, err)
	}
	return fmt.Errorf("talking to znetd at %s: %w", c.target, err)
}

// answerError turns a non-2xx answer into an *Error.
func answerError(status int, body []byte) error {
	e := &Error{Kind: KindOf(status)}
	if json.Unmarshal(body, e) != nil || e.Message == "" {
		text := strings.TrimSpace(string(body))
		if len(text) > 200 {
			text = text[:200] + "..."
		}
		e.Message = strings.TrimSpace(fmt.Sprintf("znetd answered %d %s %s", status, http.StatusText(status), text))
	}
	return e
}
