"""lib/http over real sockets: http-echo (tests/http) driven as a client would.

Routing (404, 405 with Allow), Go-compatible query and form parsing, the
413 answer to an oversized body, keep-alive and pipelining, held requests,
chunked streams read incrementally, client disconnects reported through
on_close, many concurrent held requests, TLS with and without client
certificates, garbage on the socket, and a clean shutdown (exit code 0, which
under an ASan build also means no leaks).
"""

import http.client
import json
import os
import select
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from keelharness import free_port

MAX_BODY = 3 << 19  # 1.5 MiB, etcd's limit and lib/http's default
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Echo:
    """One http-echo process and the ports it listens on."""

    def __init__(self, daemons, build_dir, name="echo", extra=(), tls=None):
        self.port = free_port()
        argv = [build_dir / "tests" / "http" / "http-echo",
                "--listen", f"http://127.0.0.1:{self.port}"]
        self.tls_ports = {}
        for label, spec in (tls or {}).items():
            port = free_port()
            self.tls_ports[label] = port
            argv += ["--listen", f"https://127.0.0.1:{port}," + spec]
        argv += list(extra)
        self.daemon = daemons.start(name, argv, ready_http=f"http://127.0.0.1:{self.port}/closes")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def conn(self, timeout=20):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None):
        c = self.conn()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def json(self, method, path, body=None, headers=None):
        status, hdrs, data = self.request(method, path, body, headers)
        assert status == 200, (status, data)
        return json.loads(data)

    def closes(self):
        return self.json("GET", "/closes")

    def wait_closes(self, pred, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            c = self.closes()
            if pred(c):
                return c
            if time.monotonic() > deadline:
                raise AssertionError(f"/closes never matched: {c}")
            time.sleep(0.02)

    def stop_clean(self):
        code = self.daemon.stop()
        assert code == 0, f"http-echo exited with {code}:\n{self.daemon.log_tail()}"


@pytest.fixture
def echo(daemons, build_dir):
    e = Echo(daemons, build_dir)
    yield e
    e.stop_clean()


def raw(port, timeout=20):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


_readers = {}  # socket -> its buffered reader


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def read(self):
        return self.body


def read_response(sock, method="GET"):
    """Read one response from sock. A buffered reader is kept on the socket, so pipelined
    responses can be read one after the other without losing what was read ahead."""
    f = _readers.get(sock)
    if f is None:
        f = _readers[sock] = sock.makefile("rb")
    line = f.readline()
    if not line:
        raise ConnectionError("connection closed before a response")
    status = int(line.split()[1])
    headers = {}
    while (h := f.readline()) not in (b"\r\n", b""):
        k, v = h.decode("latin-1").split(":", 1)
        headers[k.strip().lower()] = v.strip()
    if method == "HEAD" or status in (204, 304):
        body = b""
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                f.readline()
                break
            body += f.read(size)
            f.readline()
    elif "content-length" in headers:
        body = f.read(int(headers["content-length"]))
    else:
        body = f.read()
    return Resp(status, headers, body)


def close(sock):
    """Really close: a buffered reader left open would keep the descriptor alive."""
    f = _readers.pop(sock, None)
    if f is not None:
        f.close()
    sock.close()


def read_until_closed(sock, timeout=20):
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            return data
        if not chunk:
            return data
        data += chunk


# ---- routing -------------------------------------------------------------------------------


def test_methods_route_to_their_handlers(echo):
    for method in ("GET", "PUT", "POST", "DELETE"):
        j = echo.json(method, "/v2/keys/foo")
        assert j["method"] == method
        assert j["path"] == "/v2/keys/foo"
        assert j["route"] == "/v2/keys/"
    assert echo.json("GET", "/v2/keys")["route"] == "/v2/keys"
    assert echo.json("GET", "/echo")["route"] == "/echo"
    assert echo.json("GET", "/echo/deeper/still")["route"] == "/echo/"
    status, hdrs, body = echo.request("GET", "/v2/keys/foo")
    assert hdrs["X-Etcd-Index"] == "7"
    assert hdrs["Content-Type"] == "application/json"
    assert int(hdrs["Content-Length"]) == len(body)


def test_unknown_path_is_404(echo):
    for path in ("/nope", "/echoX", "/v2/key", "/"):
        status, hdrs, body = echo.request("GET", path)
        assert status == 404, path
        assert body == b"404 page not found\n"
        assert hdrs["Content-Type"] == "text/plain; charset=utf-8"


def test_unknown_method_is_405_with_allow(echo):
    status, hdrs, body = echo.request("PATCH", "/v2/keys/foo")
    assert status == 405
    assert hdrs["Allow"] == "HEAD,GET,PUT,POST,DELETE"  # as etcd lists them
    assert body == b"Method Not Allowed\n"
    status, hdrs, body = echo.request("POST", "/only-get")
    assert status == 405
    assert hdrs["Allow"] == "GET"
    status, hdrs, _ = echo.request("PROPFIND", "/only-get")
    assert status == 405


def test_head_has_length_but_no_body(echo):
    c = echo.conn()
    c.request("HEAD", "/v2/keys/foo")
    r = c.getresponse()
    assert r.status == 200
    assert int(r.getheader("Content-Length")) > 0
    assert r.read() == b""
    c.request("GET", "/closes")  # the connection is still in sync
    assert json.loads(c.getresponse().read())["closes"] == 0
    c.close()


def test_handler_failures_are_500(echo):
    for path in ("/fail", "/noanswer"):
        status, _, body = echo.request("GET", path)
        assert status == 500
        assert body == b"Internal Server Error\n"


def test_redispatch_runs_the_handler_again(echo):
    status, _, body = echo.request("GET", "/redispatch?ms=30")
    assert (status, body) == (200, b"redispatched 2")
    # A client that leaves while the request is held: on_close runs, nothing is redispatched.
    before = echo.closes()["closes"]
    s = raw(echo.port)
    s.sendall(b"GET /redispatch?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.05)
    s.close()
    echo.wait_closes(lambda c: c["closes"] == before + 1 and c["held"] == 0)
    time.sleep(0.4)  # the timer would have fired by now
    assert echo.request("GET", "/only-get")[0] == 200


def test_unclean_paths_are_not_redirected_by_default(echo):
    s = raw(echo.port)
    s.sendall(b"GET /echo/a/../b HTTP/1.1\r\nHost: x\r\n\r\n")
    r = read_response(s)
    close(s)
    assert r.status == 200 and json.loads(r.body)["path"] == "/echo/a/../b"


@pytest.mark.parametrize("method,target,location,body", [
    ("GET", "/v2/keys/../2/users", "/v2/2/users", b'<a href="/v2/2/users">Moved Permanently</a>.\n\n'),
    ("GET", "/v2/keys/a//b?x=1&y=%20", "/v2/keys/a/b?x=1&y=%20",
     b'<a href="/v2/keys/a/b?x=1&amp;y=%20">Moved Permanently</a>.\n\n'),
    ("GET", "/v2/keys//a%20b/", "/v2/keys/a%20b/", b'<a href="/v2/keys/a%20b/">Moved Permanently</a>.\n\n'),
    ("GET", "/v2/keys/%2e%2e/%3Ca%3E&%22'", "/v2/%3Ca%3E&%22%27",
     b'<a href="/v2/%3Ca%3E&amp;%22%27">Moved Permanently</a>.\n\n'),
    ("GET", "/v2/keys/%C3%A9/./../%C3%A9%3F%23", "/v2/keys/%C3%A9%3F%23",
     b'<a href="/v2/keys/%C3%A9%3F%23">Moved Permanently</a>.\n\n'),
    ("PUT", "/v2/keys/a/b/..", "/v2/keys/a", b""),
    ("DELETE", "/..", "/", b""),
])
def test_clean_paths_redirect_like_go(daemons, build_dir, method, target, location, body):
    # The answers etcd 3.4 (Go's ServeMux) gives to the same request targets.
    e = Echo(daemons, build_dir, name="echo-clean", extra=["--clean-paths"])
    s = raw(e.port)
    s.sendall(f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
    r = read_response(s, method)
    close(s)
    assert r.status == 301
    assert r.headers["location"] == location
    assert r.body == body
    assert ("content-type" in r.headers) == (method == "GET")
    # Clean paths go through, a trailing slash included.
    for path in ("/echo/a/", "/echo", "/v2/keys/"):
        assert e.request("GET", path)[0] == 200
    e.stop_clean()


# ---- query and form ------------------------------------------------------------------------


def test_query_parsing_matches_go(echo):
    j = echo.json("GET", "/echo?key=a+b&key=%2Ffoo&x&=v&&dir=true")
    assert j["raw_query"] == "key=a+b&key=%2Ffoo&x&=v&&dir=true"
    assert j["query"] == [["key", "a b"], ["key", "/foo"], ["x", ""], ["", "v"], ["dir", "true"]]
    assert j["form"]["key"] == ["a b", "/foo"]
    assert j["first"] == "a b"
    assert j["form_error"] is None


def test_path_is_percent_decoded_plus_kept(echo):
    j = echo.json("GET", "/echo/a%2Fb+c%20d?q=1")
    assert j["path"] == "/echo/a/b+c d"
    assert j["raw_path"] == "/echo/a%2Fb+c%20d"
    status, hdrs, body = echo.request("GET", "/echo/%zz")
    assert status == 400
    assert body == b"400 Bad Request"


def test_post_form_comes_before_query(echo):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    j = echo.json("POST", "/echo?key=fromquery&only=q", body="key=frombody&value=a+b%26c", headers=form)
    assert j["post"] == [["key", "frombody"], ["value", "a b&c"]]
    assert j["form"]["key"] == ["frombody", "fromquery"]
    assert j["first"] == "frombody"
    assert j["form"]["only"] == ["q"]
    # PUT parses the body too (etcd's PUT /v2/keys/x with value=...)
    j = echo.json("PUT", "/v2/keys/x", body="value=bar&ttl=5",
                  headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    assert j["post"] == [["value", "bar"], ["ttl", "5"]]


def test_body_not_a_form_unless_post_put_patch_with_form_type(echo):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    j = echo.json("DELETE", "/echo?key=q", body="key=b", headers=form)
    assert j["post"] == [] and j["first"] == "q"
    j = echo.json("POST", "/echo?key=q", body="key=b", headers={"Content-Type": "application/json"})
    assert j["post"] == [] and j["first"] == "q"
    assert j["body"] == "key=b"
    j = echo.json("POST", "/echo?key=q", body="key=b")  # no Content-Type at all
    assert j["post"] == []


def test_bad_escapes_are_reported_like_go(echo):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    j = echo.json("POST", "/echo", body="a=1&b=%zz&c=3", headers=form)
    assert j["form_error"] == 'invalid URL escape "%zz"'
    assert j["post"] == [["a", "1"], ["c", "3"]]
    j = echo.json("GET", "/echo?a=1;b=2&c=3")
    assert j["form_error"] == "invalid semicolon separator in query"
    assert j["query"] == [["c", "3"]]
    # The body's error wins over the query's, as in Go's ParseForm.
    j = echo.json("POST", "/echo?x=%qq", body="y=%zz", headers=form)
    assert j["form_error"] == 'invalid URL escape "%zz"'


def test_headers_lookup_any_case(echo):
    j = echo.json("GET", "/echo", headers={"X-Test": "hello world"})
    assert j["x_test"] == "hello world"
    assert j["content_type"] is None
    assert j["remote"].startswith("127.0.0.1:")
    assert j["tls"] is False
    assert j["version"] == 0x101


# ---- bodies --------------------------------------------------------------------------------


def test_body_at_limit_is_accepted(echo):
    body = b"x" * MAX_BODY
    j = echo.json("POST", "/echo", body=body, headers={"Content-Type": "application/octet-stream"})
    assert j["body_len"] == MAX_BODY


def test_body_over_limit_gets_413(echo):
    body = b"y" * (2 * 1024 * 1024)
    for _ in range(3):  # reliably: the server drains the body before closing
        c = echo.conn(timeout=10)
        c.request("POST", "/echo", body=body, headers={"Content-Type": "application/octet-stream"})
        r = c.getresponse()
        assert r.status == 413
        assert r.getheader("Connection") == "close"
        assert r.read() == b"request entity is too large"
        c.close()
    assert echo.closes()["closes"] == 0  # still serving


def test_chunked_body_over_limit_gets_413(echo):
    s = raw(echo.port, timeout=10)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"z" * 65536
    try:
        for _ in range(MAX_BODY // len(chunk) + 2):
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    except (BrokenPipeError, ConnectionResetError):
        pass
    r = read_response(s)
    assert r.status == 413
    s.close()
    # A chunked body under the limit is fine.
    s = raw(echo.port)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    r = read_response(s)
    assert r.status == 200
    assert json.loads(r.read())["body"] == "hello world"
    s.close()


def test_limit_is_the_same_for_content_length_and_chunked(daemons, build_dir):
    e = Echo(daemons, build_dir, extra=["--max-body", "1000"])

    def post(n, chunked):
        s = raw(e.port)
        if chunked:
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"%x\r\n%s\r\n0\r\n\r\n" % (n, b"a" * n))
        else:
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (n, b"a" * n))
        r = read_response(s)
        close(s)
        return r

    for chunked in (False, True):
        r = post(1000, chunked)
        assert r.status == 200 and json.loads(r.body)["body_len"] == 1000
        for n in (1001, 1002, 5000):
            r = post(n, chunked)
            assert r.status == 413, (n, chunked)
            assert r.body == b"request entity is too large"
    e.stop_clean()


# ---- connections ---------------------------------------------------------------------------


def test_keepalive_serves_several_requests_on_one_connection(echo):
    c = echo.conn()
    remotes = set()
    for i in range(5):
        c.request("GET", f"/echo?i={i}")
        r = c.getresponse()
        assert r.status == 200
        assert r.getheader("Connection") == "keep-alive"
        j = json.loads(r.read())
        assert j["first"] is None and j["query"] == [["i", str(i)]]
        remotes.add(j["remote"])
    assert len(remotes) == 1  # one TCP connection
    c.close()


def test_pipelined_requests_are_answered_in_order(echo):
    s = raw(echo.port)
    s.sendall(b"GET /echo?n=1 HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /hold?ms=100 HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /echo?n=3 HTTP/1.1\r\nHost: x\r\n\r\n")
    r1 = read_response(s)
    assert json.loads(r1.read())["query"] == [["n", "1"]]
    r2 = read_response(s)
    assert r2.read() == b"held 100"
    r3 = read_response(s)
    assert json.loads(r3.read())["query"] == [["n", "3"]]
    s.close()


def test_no_keepalive_option_closes_after_each_response(daemons, build_dir):
    e = Echo(daemons, build_dir, extra=["--no-keepalive"])
    s = raw(e.port)
    s.sendall(b"GET /closes HTTP/1.1\r\nHost: x\r\n\r\n")
    data = read_until_closed(s)
    assert b"Connection: close" in data and data.endswith(b"}")
    e.stop_clean()


def test_idle_connection_is_closed_after_timeout(daemons, build_dir):
    e = Echo(daemons, build_dir, extra=["--idle-ms", "300"])
    s = raw(e.port)
    t0 = time.monotonic()
    assert read_until_closed(s, timeout=20) == b""
    # After the 300 ms, and long before the default idle timeout (60 s) could have done it:
    # the upper bound leaves room for a sanitizer build on a busy machine.
    assert 0.2 < time.monotonic() - t0 < 15
    e.stop_clean()


def test_silent_half_request_is_closed_after_the_idle_timeout(daemons, build_dir):
    # etcd's client server (Go's http.Server without ReadTimeout) would wait forever here.
    e = Echo(daemons, build_dir, extra=["--idle-ms", "300"])
    head = raw(e.port)
    head.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nContent-Le")
    body = raw(e.port)
    body.sendall(b"PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
    for s in (head, body):
        assert read_until_closed(s, timeout=5) == b""
        close(s)
    e.stop_clean()


def test_connection_limit_defers_accepting_until_one_closes(daemons, build_dir):
    e = Echo(daemons, build_dir, extra=["--max-conns", "3"])
    held = []
    for _ in range(3):
        s = raw(e.port)
        s.sendall(b"GET /only-get HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(s).status == 200
        held.append(s)
    late = raw(e.port)  # the kernel completes the handshake; the server does not accept
    late.sendall(b"GET /only-get HTTP/1.1\r\nHost: x\r\n\r\n")
    late.settimeout(0.5)
    with pytest.raises(socket.timeout):
        late.recv(1)
    close(held.pop())
    late.settimeout(20)
    assert read_response(late).status == 200
    for s in held + [late]:  # the connections in use are served as before
        s.sendall(b"GET /only-get HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(s).status == 200
        close(s)
    e.stop_clean()


def test_connection_limit_recovers_from_silent_half_requests(daemons, build_dir):
    e = Echo(daemons, build_dir, extra=["--max-conns", "2", "--idle-ms", "300"])
    silent = [raw(e.port) for _ in range(2)]
    for s in silent:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nContent-Le")
    waiting = raw(e.port)
    waiting.sendall(b"GET /only-get HTTP/1.1\r\nHost: x\r\n\r\n")
    # Answered once the idle timeout has closed the half-requests that held the slots.
    assert read_response(waiting).status == 200
    for s in silent:
        assert read_until_closed(s, timeout=5) == b""
        close(s)
    close(waiting)
    # Stopping with a connection left unaccepted at the limit releases it too (ASan: no leak).
    more = [raw(e.port) for _ in range(3)]
    for s in more:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nContent-Le")
    e.stop_clean()
    for s in more:
        read_until_closed(s, timeout=5)
        close(s)


def test_garbage_closes_the_connection_server_survives(echo):
    s = raw(echo.port)
    s.sendall(b"GARBAGE\r\n\r\n")
    data = read_until_closed(s)
    assert data.startswith(b"HTTP/1.1 400")
    s = raw(echo.port)
    s.sendall(os.urandom(4096).replace(b"\n", b"x") + b"\r\n\r\n")
    read_until_closed(s)
    s = raw(echo.port)
    s.sendall(b"GET /echo HTTP/1.1\r\n" + b"X-Long: " + b"a" * 500000 + b"\r\n\r\n")
    read_until_closed(s)
    s = raw(echo.port)
    s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(200))  # TLS to plain
    read_until_closed(s)
    assert echo.closes()["closes"] == 0


# ---- held requests and streams -------------------------------------------------------------


def test_held_request_is_answered_later(echo):
    c = echo.conn()
    t0 = time.monotonic()
    c.request("GET", "/hold?ms=300")
    r = c.getresponse()
    assert r.status == 200 and r.read() == b"held 300"
    assert time.monotonic() - t0 >= 0.28
    c.request("GET", "/echo?after=hold")  # same connection goes on
    assert json.loads(c.getresponse().read())["query"] == [["after", "hold"]]
    c.close()


def test_brief_hold_is_answered_and_the_connection_goes_on(echo):
    # keel_http_hold_brief: answered later like a hold; the connection then serves the next
    # request, also one the client pipelined while the first was held.
    s = raw(echo.port)
    s.sendall(b"GET /hold?ms=200&brief=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /echo?after=brief HTTP/1.1\r\nHost: x\r\n\r\n")
    r = read_response(s)
    assert r.status == 200 and r.read() == b"held 200"
    assert json.loads(read_response(s).read())["query"] == [["after", "brief"]]
    s.sendall(b"GET /hold?ms=50&brief=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(s).read() == b"held 50"
    s.close()
    assert echo.closes() == {"closes": 0, "held": 0, "streams": 0}


def test_brief_hold_of_a_client_that_left_is_answered_into_the_void(echo):
    # The connection is not watched: the client's leaving is not reported (no on_close); the
    # answer is written to a closed socket, which ends the connection, and nothing leaks.
    s = raw(echo.port)
    s.sendall(b"GET /hold?ms=300&brief=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    echo.wait_closes(lambda c: c["held"] == 1)
    s.close()
    time.sleep(0.1)
    assert echo.closes() == {"closes": 0, "held": 1, "streams": 0}
    echo.wait_closes(lambda c: c["held"] == 0, timeout=3)
    assert echo.closes()["closes"] == 0


def test_held_request_answered_by_another_request(echo):
    s = raw(echo.port)
    s.sendall(b"GET /hold?id=t1 HTTP/1.1\r\nHost: x\r\n\r\n")
    echo.wait_closes(lambda c: c["held"] == 1)
    assert echo.json("POST", "/release?id=t1") == {"released": 1}
    r = read_response(s)
    assert r.status == 200 and r.read() == b"released"
    s.close()
    assert echo.closes() == {"closes": 0, "held": 0, "streams": 0}


def read_chunk(f):
    size = int(f.readline().split(b";")[0], 16)
    data = f.read(size)
    assert f.read(2) == b"\r\n"
    return data


def test_stream_chunks_arrive_incrementally(echo):
    s = raw(echo.port)
    t0 = time.monotonic()
    s.sendall(b"GET /stream?n=4&ms=500 HTTP/1.1\r\nHost: x\r\n\r\n")
    f = _readers[s] = s.makefile("rb")
    status = f.readline()
    assert status.startswith(b"HTTP/1.1 200")
    headers = {}
    while (line := f.readline()) != b"\r\n":
        k, v = line.decode().split(":", 1)
        headers[k.strip().lower()] = v.strip()
    headers_at = time.monotonic() - t0
    assert headers["transfer-encoding"] == "chunked"
    assert headers["x-etcd-index"] == "42"
    assert "content-length" not in headers
    arrivals = []
    for i in range(4):
        assert read_chunk(f) == f"chunk {i}\n".encode()
        arrivals.append(time.monotonic() - t0)
    assert read_chunk(f) == b""  # the last chunk
    # Headers are flushed before the first chunk exists, and the chunks come one at a time,
    # not all at the end: measured between arrivals (the server writes one every 500 ms), so
    # a slow start of the server (sanitizers, a busy machine) does not matter.
    for a, b in zip([headers_at] + arrivals, arrivals):
        assert b - a > 0.25, (headers_at, arrivals)
    # keep-alive after a stream
    s.sendall(b"GET /closes HTTP/1.1\r\nHost: x\r\n\r\n")
    assert json.loads(read_response(s).read())["streams"] == 0
    s.close()


def test_stream_queues_behind_the_write_in_flight(echo):
    # 40 chunks of 200 kB written at once: most wait in the queue for h2o's proceed.
    c = echo.conn(timeout=20)
    c.request("GET", "/stream?n=40&ms=0&size=200000")
    r = c.getresponse()
    data = r.read()
    assert len(data) == 40 * 200000
    parts = [data[i * 200000:(i + 1) * 200000] for i in range(40)]
    for i, p in enumerate(parts):
        assert p.startswith(f"chunk {i}\n".encode()), i
    c.close()


def test_stream_for_http10_is_close_delimited(echo):
    s = raw(echo.port)
    s.sendall(b"GET /stream?n=2&ms=20 HTTP/1.0\r\n\r\n")
    data = read_until_closed(s)
    head, body = data.split(b"\r\n\r\n", 1)
    assert b"chunked" not in head.lower()
    assert body == b"chunk 0\nchunk 1\n"


@pytest.mark.parametrize("what", ["hold", "stream"])
def test_client_disconnect_calls_on_close(echo, what):
    s = raw(echo.port)
    path = "/hold?id=d" if what == "hold" else "/stream?id=d&n=1&ms=10"
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    key = "held" if what == "hold" else "streams"
    echo.wait_closes(lambda c: c[key] == 1)
    if what == "stream":
        s.recv(100)  # headers are out
    t0 = time.monotonic()
    s.close()
    # Noticed at once, not at the idle timeout (60 s); the bound leaves room for a sanitizer
    # build on a busy machine.
    c = echo.wait_closes(lambda c: c["closes"] == 1, timeout=10.0)
    assert c[key] == 0
    assert time.monotonic() - t0 < 10.0
    assert echo.json("GET", "/release?id=d") == {"released": 0}


def test_client_disconnect_with_pipelined_bytes(echo):
    s = raw(echo.port)
    s.sendall(b"GET /hold?id=p HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\n")
    echo.wait_closes(lambda c: c["held"] == 1)
    s.sendall(b"Host: x\r\n\r\n")  # more of the pipelined request: not a disconnect
    time.sleep(0.2)
    assert echo.closes()["closes"] == 0
    assert echo.json("GET", "/release?id=p") == {"released": 1}
    assert read_response(s).read() == b"released"
    assert json.loads(read_response(s).read())["path"] == "/echo"
    s.close()


def test_flooding_a_held_request_ends_it(echo):
    s = raw(echo.port)
    s.sendall(b"GET /hold?id=f HTTP/1.1\r\nHost: x\r\n\r\n")
    echo.wait_closes(lambda c: c["held"] == 1)
    try:
        s.sendall(b"x" * (256 << 10))
    except (BrokenPipeError, ConnectionResetError):
        pass
    echo.wait_closes(lambda c: c["closes"] == 1 and c["held"] == 0, timeout=10)
    s.close()


def test_many_concurrent_held_requests(echo):
    n = 200
    socks = []
    for _ in range(n):
        s = raw(echo.port, timeout=10)
        s.sendall(b"GET /hold?id=many HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(s)
    echo.wait_closes(lambda c: c["held"] == n, timeout=10)
    assert echo.json("POST", "/release?id=many") == {"released": n}
    for s in socks:
        r = read_response(s)
        assert r.status == 200 and r.read() == b"released"
        s.close()
    # and 200 answered by their own timers, all at about the same time
    socks = []
    for _ in range(n):
        s = raw(echo.port, timeout=10)
        s.sendall(b"GET /hold?ms=500 HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(s)
    for s in socks:
        assert read_response(s).read() == b"held 500"
        s.close()
    assert echo.closes() == {"closes": 0, "held": 0, "streams": 0}


def test_shutdown_ends_held_requests_and_exits_cleanly(daemons, build_dir):
    e = Echo(daemons, build_dir)
    socks = []
    for path in ("/hold?id=s", "/hold?id=s", "/stream?id=s&n=1&ms=10"):
        s = raw(e.port)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        socks.append(s)
    idle = raw(e.port)  # an idle keep-alive connection
    e.wait_closes(lambda c: c["held"] == 2 and c["streams"] == 1)
    e.stop_clean()
    assert "closed closes=3" in e.daemon.log_text()
    for s in socks + [idle]:
        read_until_closed(s, timeout=10)
        s.close()


def test_ipv6_listener(daemons, build_dir):
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    port6 = free_port("::1")
    e = Echo(daemons, build_dir, extra=["--listen", f"http://[::1]:{port6}"])
    c = http.client.HTTPConnection("::1", port6, timeout=5)
    c.request("GET", "/echo")
    j = json.loads(c.getresponse().read())
    assert j["remote"].startswith("[::1]:")
    c.close()
    e.stop_clean()


# ---- TLS -----------------------------------------------------------------------------------


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certs(d):
    """A self-signed server certificate, and a client CA with one client and a rogue client."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    san = d / "san.ext"
    san.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("req", "-x509", *ec, "-keyout", d / "server.key", "-out", d / "server.crt", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost")
    for ca in ("ca", "rogue-ca"):
        openssl("req", "-x509", *ec, "-keyout", d / f"{ca}.key", "-out", d / f"{ca}.crt", "-days", "2",
                "-subj", f"/CN={ca}")
    for name, ca in (("client", "ca"), ("rogue", "rogue-ca")):
        openssl("req", *ec, "-keyout", d / f"{name}.key", "-out", d / f"{name}.csr",
                "-subj", f"/O=Keel/CN={name}")
        openssl("x509", "-req", "-in", d / f"{name}.csr", "-CA", d / f"{ca}.crt", "-CAkey", d / f"{ca}.key",
                "-CAcreateserial", "-out", d / f"{name}.crt", "-days", "2")
    return d


@pytest.fixture
def tls_echo(daemons, build_dir, tmp_path):
    d = make_certs(tmp_path)
    base = f"cert={d / 'server.crt'},key={d / 'server.key'}"
    e = Echo(daemons, build_dir, tls={"plain": base, "mutual": base + f",ca={d / 'ca.crt'}"})
    e.certs = d
    yield e
    e.stop_clean()


def tls_get(port, certs, path="/echo", client=None):
    ctx = ssl.create_default_context(cafile=str(certs / "server.crt"))
    if client:
        ctx.load_cert_chain(str(certs / f"{client}.crt"), str(certs / f"{client}.key"))
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=ctx)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_tls_listener_serves(tls_echo):
    status, body = tls_get(tls_echo.tls_ports["plain"], tls_echo.certs, "/echo/x?a=1")
    assert status == 200
    j = json.loads(body)
    assert j["tls"] is True and j["path"] == "/echo/x" and j["client_subject"] is None
    # the plain listener of the same server is not TLS
    assert tls_echo.json("GET", "/echo")["tls"] is False


def test_tls_held_request_and_disconnect(tls_echo):
    ctx = ssl.create_default_context(cafile=str(tls_echo.certs / "server.crt"))
    s = ctx.wrap_socket(raw(tls_echo.tls_ports["plain"]), server_hostname="127.0.0.1")
    s.sendall(b"GET /hold?ms=200 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(s).read() == b"held 200"
    s.sendall(b"GET /hold?id=tls HTTP/1.1\r\nHost: x\r\n\r\n")
    tls_echo.wait_closes(lambda c: c["held"] == 1)
    close(s)
    tls_echo.wait_closes(lambda c: c["closes"] == 1, timeout=10.0)


def test_client_cert_required(tls_echo):
    port = tls_echo.tls_ports["mutual"]
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)):
        tls_get(port, tls_echo.certs)
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)):
        tls_get(port, tls_echo.certs, client="rogue")
    status, body = tls_get(port, tls_echo.certs, client="client")
    assert status == 200
    j = json.loads(body)
    assert j["client_cn"] == "client"
    assert j["client_subject"] == "CN=client,O=Keel"


def test_tls_garbage_and_plain_http_are_refused(tls_echo):
    port = tls_echo.tls_ports["plain"]
    s = raw(port)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    read_until_closed(s)
    s = raw(port)
    s.sendall(os.urandom(3000))
    read_until_closed(s)
    status, _ = tls_get(port, tls_echo.certs, "/closes")
    assert status == 200
