/*
 * health.c - poll the application's health URL (libcurl) until it
 * answers 2xx, within the plan's tries and deadline.
 *
 * The URL may carry credentials or a token in its query string: it is
 * only ever shown through dgm_verify_url_redact().
 */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dgm/clock.h"
#include "dgm/buf.h"
#include "dgm/log.h"
#include "dgm/run.h"
#include "dgm/verify.h"

#define TRY_MAX_MS 30000     /* one try's limit when there is no deadline */
#define BODY_MAX 120         /* bytes of the answer kept as evidence */
#define SLEEP_SLICE_MS 100   /* how soon a wait notices an interrupt */

#ifndef DGM_VERSION
#define DGM_VERSION "dev"
#endif

typedef struct answer {
	long status;                   /* HTTP status of the last try, 0: none */
	CURLcode code;                 /* transport result of the last try */
	char errbuf[CURL_ERROR_SIZE];
	dgm_buf body;                  /* first BODY_MAX bytes of the last answer */
} answer;

static size_t on_body(char *data, size_t size, size_t n, void *payload)
{
	dgm_buf *b = payload;
	size_t len = size * n;

	if (b->len < BODY_MAX)
		dgm_buf_put(b, data, len < BODY_MAX - b->len ? len : BODY_MAX - b->len);
	return len;
}

/* Non-zero aborts the transfer: an interrupted run must not wait for a
 * slow server. */
static int on_progress(void *p, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	return dgm_run_interrupted ? 1 : 0;
}

static int setup(CURL *h, const char *url, answer *a, dgm_error *err)
{
	CURLcode rc = CURLE_OK;

#define SET(opt, val) if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_FOLLOWLOCATION, 1L);
	SET(CURLOPT_MAXREDIRS, 5L);
#if LIBCURL_VERSION_NUM >= 0x075500
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	SET(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	/* each try opens a new connection: that is what a client would do */
	SET(CURLOPT_FORBID_REUSE, 1L);
	SET(CURLOPT_USERAGENT, "dgmigrate/" DGM_VERSION);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, &a->body);
	SET(CURLOPT_ERRORBUFFER, a->errbuf);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
#undef SET
	if (rc != CURLE_OK)
		return dgm_error_set(err, DGM_E_RUN, "cannot set up the health check: %s",
				     curl_easy_strerror(rc));
	return 0;
}

static bool one_try(CURL *h, answer *a, long limit_ms)
{
	dgm_buf_clear(&a->body);
	a->errbuf[0] = '\0';
	a->status = 0;
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, limit_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, limit_ms);
	a->code = curl_easy_perform(h);
	if (a->code == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
	return a->code == CURLE_OK && a->status >= 200 && a->status < 300;
}

/* "HTTP 503: {"status":"starting"}" or the transport error, one line. */
static void describe(dgm_buf *b, const answer *a)
{
	size_t n = strlen(a->errbuf);

	if (a->code != CURLE_OK) {
		while (n && (a->errbuf[n - 1] == '\n' || a->errbuf[n - 1] == ' '))
			n--;
		if (n)
			dgm_buf_put(b, a->errbuf, n);
		else
			dgm_buf_puts(b, curl_easy_strerror(a->code));
		return;
	}
	dgm_buf_printf(b, "HTTP %ld", a->status);
	n = a->body.len;
	while (n && (unsigned char)a->body.ptr[n - 1] <= ' ')
		n--;
	if (!n)
		return;
	dgm_buf_puts(b, ": ");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)a->body.ptr[i];

		/* one line, no control characters: it goes into logs and messages */
		dgm_buf_putc(b, c == '\n' || c == '\r' || c == '\t' ? ' '
				: c < 0x20 ? '?' : (char)c);
	}
}

/* Wait ms, in slices, so that an interrupt is noticed. */
static void pause_ms(long ms)
{
	long end = dgm_now_ms() + ms;

	while (!dgm_run_interrupted) {
		long left = end - dgm_now_ms();
		struct timespec ts;

		if (left <= 0)
			return;
		if (left > SLEEP_SLICE_MS)
			left = SLEEP_SLICE_MS;
		ts.tv_sec = left / 1000;
		ts.tv_nsec = (left % 1000) * 1000000L;
		nanosleep(&ts, NULL);
	}
}

/* Why polling ended. */
typedef enum poll_end {
	END_OK = 0,                 /* a 2xx answer */
	END_TRIES,                  /* health_check.retries used up */
	END_DEADLINE,               /* the next try would start past the deadline */
	END_INTERRUPTED
} poll_end;

typedef struct poll_state {
	const dgm_plan *plan;
	const char *shown;          /* the redacted URL */
	long start, deadline;       /* deadline 0: none */
	int tries;
	poll_end end;
} poll_state;

/* Try until 2xx (true) or the tries, the deadline or the run run out. */
static bool poll_url(CURL *h, answer *a, poll_state *s)
{
	int retries = s->plan->health_check.retries > 0 ? s->plan->health_check.retries : 1;
	long interval = s->plan->health_check.interval_ms;
	dgm_buf last = DGM_BUF_INIT;

	for (s->tries = 1;; s->tries++) {
		long limit = s->deadline ? s->deadline - dgm_now_ms() : TRY_MAX_MS;

		if (one_try(h, a, limit > 0 ? limit : 1))
			break;
		dgm_buf_clear(&last);
		describe(&last, a);
		if (dgm_run_interrupted)
			s->end = END_INTERRUPTED;
		else if (s->tries >= retries)
			s->end = END_TRIES;
		else if (s->deadline && dgm_now_ms() + interval >= s->deadline)
			s->end = END_DEADLINE;
		if (s->end != END_OK)
			break;
		dgm_info("health check: try %d of %d: %s; next in %ld ms", s->tries, retries,
			 last.ptr, interval);
		pause_ms(interval);
	}
	dgm_buf_free(&last);
	return s->end == END_OK;
}

static int failed(dgm_verify_result *res, const char *item, const poll_state *s,
		  const answer *a, dgm_error *err)
{
	long took = dgm_now_ms() - s->start;
	const char *tries = s->tries == 1 ? "try" : "tries";
	dgm_buf why = DGM_BUF_INIT, last = DGM_BUF_INIT;

	describe(&last, a);
	if (s->end == END_INTERRUPTED)
		dgm_buf_printf(&why, "interrupted after %d %s", s->tries, tries);
	else if (s->end == END_DEADLINE)
		dgm_buf_printf(&why, "no 2xx answer within the %ld ms deadline (%d %s)",
			       s->plan->health_check.timeout_ms, s->tries, tries);
	else
		dgm_buf_printf(&why, "no 2xx answer after %d %s in %ld ms", s->tries, tries, took);
	dgm_buf_printf(&why, "; last: %s", last.ptr);
	dgm_verify_add(res, item, false, "%s", why.ptr);
	dgm_error_set(err, DGM_E_RUN, "health check '%s' failed: %s", s->shown, why.ptr);
	if (a->code != CURLE_OK)
		dgm_error_hint(err, "check that the application runs and listens at that address; "
			       "raise health_check.timeout or retries if it starts slowly");
	else
		dgm_error_hint(err, "check the application's log and that it answers GET on that "
			       "path with 2xx");
	dgm_buf_free(&why);
	dgm_buf_free(&last);
	return -1;
}

static int run_poll(dgm_verify_result *res, const dgm_plan *plan, const char *shown,
		    dgm_error *err)
{
	poll_state s = { .plan = plan, .shown = shown, .start = dgm_now_ms() };
	answer a = { 0 };
	dgm_buf ok = DGM_BUF_INIT;
	char *item = dgm_xasprintf("health %s", shown);
	CURL *h = curl_easy_init();
	int ret = -1;

	if (!h) {
		dgm_error_set(err, DGM_E_RUN, "cannot set up the health check: libcurl failed");
		goto out;
	}
	if (setup(h, plan->health_check.url, &a, err))
		goto out;
	if (plan->health_check.timeout_ms > 0)
		s.deadline = s.start + plan->health_check.timeout_ms;
	if (!poll_url(h, &a, &s)) {
		failed(res, item, &s, &a, err);
		goto out;
	}
	describe(&ok, &a);
	dgm_verify_add(res, item, true, "%s (try %d, %ld ms)", ok.ptr, s.tries,
		       dgm_now_ms() - s.start);
	ret = 0;
out:
	if (h)
		curl_easy_cleanup(h);
	dgm_buf_free(&a.body);
	dgm_buf_free(&ok);
	free(item);
	return ret;
}

int dgm_verify_health(dgm_verify_result *res, const dgm_plan *plan, dgm_error *err)
{
	char *shown;
	int ret;

	if (!plan->health_check.url || !*plan->health_check.url)
		return 0;
	/* reference-counted: matched by the cleanup below */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return dgm_error_set(err, DGM_E_RUN, "cannot initialise libcurl");
	shown = dgm_verify_url_redact(plan->health_check.url);
	dgm_info("health check: GET %s", shown);
	ret = run_poll(res, plan, shown, err);
	free(shown);
	curl_global_cleanup();
	return ret;
}
