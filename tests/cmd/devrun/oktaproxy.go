package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// idProxy sits in front of the Okta fake and translates ids: the fake generates its own (00g…,
// 00u…), the events/ samples carry real-looking Okta ids, and the functions must see one Okta.
// Requests get the fake's ids, responses (bodies and Link headers) the samples'. Both sets are
// fixed-length, distinct tokens, so plain replacement is exact.
type idProxy struct {
	url string
	srv *http.Server
}

func startIDProxy(target string, sampleToFake map[string]string) (*idProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("okta proxy: %w", err)
	}
	var toFake, toSample []string
	for s, f := range sampleToFake {
		toFake = append(toFake, s, f)
		toSample = append(toSample, f, s)
	}
	reqRepl, respRepl := strings.NewReplacer(toFake...), strings.NewReplacer(toSample...)

	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			// The fake builds its Link headers from Host: keep the proxy's, so paging stays here.
			pr.Out.Host = pr.In.Host
			pr.Out.URL.Path = reqRepl.Replace(pr.Out.URL.Path)
			pr.Out.URL.RawPath = ""
			pr.Out.URL.RawQuery = reqRepl.Replace(pr.Out.URL.RawQuery)
			// Uncompressed bodies, so they can be rewritten.
			pr.Out.Header.Del("Accept-Encoding")
		},
		ModifyResponse: func(resp *http.Response) error {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			b = []byte(respRepl.Replace(string(b)))
			resp.Body = io.NopCloser(bytes.NewReader(b))
			resp.ContentLength = int64(len(b))
			resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
			for i, v := range resp.Header.Values("Link") {
				resp.Header["Link"][i] = respRepl.Replace(v)
			}
			return nil
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("okta proxy: %w", err)
	}
	p := &idProxy{url: "http://" + ln.Addr().String(), srv: &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *idProxy) close() { _ = p.srv.Close() }
