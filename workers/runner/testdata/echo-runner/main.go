// Command echo-runner is the runner the tests deploy (built by package
// runnertest): an HTTP server on $PORT that answers with its revision,
// runner id and pid.
//
//	GET /slow?ms=N     holds the request open for N milliseconds
//	GET /stream?n=N    streams N chunks, one every 10 ms, flushing each;
//	                   with &gated=1 each chunk after the first waits for
//	                   a POST /release instead of 10 ms
//	GET /stats         in-flight requests now and at most so far, and the
//	                   bytes uploads have read so far
//	GET /crash         exits with status 3 at once
//	GET /env?name=N    the value of environment variable N
//	POST /upload       reads the body and answers its size
//
// On SIGTERM it does what $ECHO_RUNNER_SIGTERM says: "graceful" (the
// default) stops accepting, lets in-flight requests finish and exits 0;
// "die" exits at once; "ignore" carries on (it must be killed). Arguments
// are ignored (tests add some to make two revisions' commands differ).
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	onSIGTERM := os.Getenv("ECHO_RUNNER_SIGTERM")

	var mu sync.Mutex
	inFlight, peak := 0, 0
	var uploaded atomic.Int64
	release := make(chan struct{})
	count := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			inFlight++
			peak = max(peak, inFlight)
			mu.Unlock()
			defer func() {
				mu.Lock()
				inFlight--
				mu.Unlock()
			}()
			h(w, r)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", count(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "revision=%s runner=%s pid=%d\n", os.Getenv("REVLINE_REVISION"), os.Getenv("REVLINE_RUNNER_ID"), os.Getpid())
	}))
	mux.HandleFunc("/slow", count(func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			fmt.Fprintln(w, "done")
		case <-r.Context().Done():
		}
	}))
	mux.HandleFunc("/stream", count(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		gated := r.URL.Query().Get("gated") == "1"
		for i := range n {
			if i > 0 && gated {
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
			} else if i > 0 {
				time.Sleep(10 * time.Millisecond)
			}
			fmt.Fprintf(w, "chunk %d\n", i)
			w.(http.Flusher).Flush()
		}
	}))
	mux.HandleFunc("POST /release", func(w http.ResponseWriter, r *http.Request) {
		select {
		case release <- struct{}{}:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "in_flight=%d peak=%d uploaded=%d\n", inFlight, peak, uploaded.Load())
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv(r.URL.Query().Get("name")))
	})
	mux.HandleFunc("/crash", func(http.ResponseWriter, *http.Request) { os.Exit(3) })
	mux.HandleFunc("/upload", count(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, io.TeeReader(r.Body, writerFunc(func(p []byte) (int, error) {
			uploaded.Add(int64(len(p)))
			return len(p), nil
		})))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "received=%d\n", n)
	}))

	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: mux}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	shutDown := make(chan struct{})
	go func() {
		defer close(shutDown)
		for range signals {
			switch onSIGTERM {
			case "ignore":
				fmt.Println("ignoring SIGTERM")
			case "die":
				os.Exit(143)
			default:
				_ = srv.Shutdown(context.Background()) // waits for in-flight requests
				return
			}
		}
	}()
	fmt.Println("listening on", ln.Addr())
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	<-shutDown
}

// writerFunc is an io.Writer made of a function.
type writerFunc func([]byte) (int, error)

// Write implements io.Writer.
func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
