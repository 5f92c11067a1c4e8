/* schedcp-probe: workloads that measure a CPU scheduler.
 *
 *   probe mixed   [opts]  light phase, then overload (hogs, niced hogs, short-lived tasks, interactive)
 *   probe batch   [opts]  N parallel CPU-bound jobs of 4 kinds (N-1 short + 1 long): makespan vs bound
 *   probe latency [opts]  a 5 ms periodic task's wake-up delay while CPU hogs run
 *
 * Each mode prints ONE JSON document (one line) on stdout, and to --out FILE if given.
 * Workers are forked processes in their own process group with PDEATHSIG, so a timeout,
 * SIGINT/SIGTERM/SIGHUP or the probe's own death never leaves a process behind.
 * Exit status: 0 ok, 124 timeout, 128+signal when interrupted, 2 usage/system error.
 *
 * C11, libc + libm only. Build: cc -O2 -o schedcp-probe probe.c -lm
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NS 1000000000ull
#define MS 1000000ull
#define MAX_TASKS 512
#define MAX_SAMPLES 32768

/* ---------- time, work ---------- */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static volatile uint64_t sink;

/* A serial dependency chain the compiler cannot vectorise away: one "iteration" of work. */
static uint64_t spin(uint64_t n, uint64_t x)
{
	for (uint64_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

static uint64_t rng_next(uint64_t *s)
{
	*s = spin(1, *s);
	return *s;
}

/* ---------- shared result slots ---------- */

enum cls { C_HOG, C_NICED, C_INTERACTIVE, C_SHORT, C_JOB };
static const char *cls_name[] = {"hog", "niced", "interactive", "short", "job"};

struct slot {
	int32_t cls, nice, index, pid, phase, finished, exit_status, job_type;
	uint64_t iters, cpu_ns, start_ns, end_ns, max_gap_ns;
	uint64_t count, missed, units;
	uint32_t nsamples, sample_base;
};

static struct slot *slots;
static uint64_t *samples; /* MAX_SAMPLES per slot that needs them, indexed by sample_base */
static int nslots, nsample_sets;

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "schedcp-probe: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

static void shm_init(int nsets)
{
	slots = mmap(NULL, sizeof(struct slot) * MAX_TASKS, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	samples = mmap(NULL, sizeof(uint64_t) * MAX_SAMPLES * (size_t)(nsets > 0 ? nsets : 1),
		       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (slots == MAP_FAILED || samples == MAP_FAILED)
		die("mmap: %s", strerror(errno));
}

static struct slot *new_slot(int cls, int nice, int index, int phase, int with_samples)
{
	if (nslots >= MAX_TASKS)
		die("too many tasks (max %d)", MAX_TASKS);
	struct slot *s = &slots[nslots++];
	memset(s, 0, sizeof(*s));
	s->cls = cls;
	s->nice = nice;
	s->index = index;
	s->phase = phase;
	s->exit_status = -1;
	s->sample_base = with_samples ? (uint32_t)nsample_sets++ : UINT32_MAX;
	return s;
}

static void add_sample(struct slot *s, uint64_t v)
{
	if (s->sample_base != UINT32_MAX && s->nsamples < MAX_SAMPLES)
		samples[(size_t)s->sample_base * MAX_SAMPLES + s->nsamples++] = v;
}

/* ---------- process control ---------- */

static pid_t parent_pid, group;
static sigset_t ctl_signals;
static uint64_t t_begin, global_deadline;
static const char *mode_name = "?";
static const char *out_path;

struct child {
	pid_t pid;
	struct slot *slot;
	int live;
};
static struct child kids[MAX_TASKS];
static int nkids, nlive;

/* Fork a worker into the probe's worker group; returns 0 in the child. */
static pid_t spawn(struct slot *s)
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		if (setpgid(0, group) < 0)
			setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent_pid)
			_exit(1);
		for (int sig = 1; sig < NSIG; sig++)
			if (sig != SIGKILL && sig != SIGSTOP)
				signal(sig, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		return 0;
	}
	if (setpgid(pid, group ? group : pid) < 0 && errno != EACCES && errno != ESRCH)
		setpgid(pid, pid);
	if (!group)
		group = pid;
	if (s)
		s->pid = pid;
	kids[nkids++] = (struct child){pid, s, 1};
	nlive++;
	return pid;
}

static void reap_nonblocking(void)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (int i = 0; i < nkids; i++) {
			if (kids[i].pid != pid || !kids[i].live)
				continue;
			kids[i].live = 0;
			nlive--;
			if (kids[i].slot) {
				struct slot *s = kids[i].slot;
				s->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
				s->finished = WIFEXITED(st) && WEXITSTATUS(st) == 0;
			}
		}
	}
}

/* Kill every worker (and their children) and reap them. */
static void kill_workers(void)
{
	if (group > 0)
		kill(-group, SIGKILL);
	for (int i = 0; i < nkids; i++)
		if (kids[i].live)
			kill(kids[i].pid, SIGKILL);
	while (nlive > 0) {
		int st;
		pid_t pid = waitpid(-1, &st, 0);
		if (pid < 0)
			break;
		for (int i = 0; i < nkids; i++)
			if (kids[i].pid == pid && kids[i].live) {
				kids[i].live = 0;
				nlive--;
			}
	}
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static void emit(const char *json);
static void write_pids(const char *path, int units);
static void wait_barrier(const char *path);

static void abort_run(int sig)
{
	kill_workers();
	char buf[256];
	double el = (double)(now_ns() - t_begin) / NS;
	if (sig)
		snprintf(buf, sizeof buf,
			 "{\"mode\":\"%s\",\"status\":\"interrupted\",\"signal\":%d,\"elapsed_s\":%.3f}",
			 mode_name, sig, el);
	else
		snprintf(buf, sizeof buf,
			 "{\"mode\":\"%s\",\"status\":\"timeout\",\"elapsed_s\":%.3f}", mode_name, el);
	emit(buf);
	exit(sig ? 128 + sig : 124);
}

/* Wait for signals until `deadline` or until `done()` is true. Returns 1 if done, 0 at the
 * deadline. A control signal or the global timeout aborts the whole run. */
static int wait_until(uint64_t deadline, int (*done)(void))
{
	for (;;) {
		reap_nonblocking();
		if (done && done())
			return 1;
		uint64_t t = now_ns();
		if (t >= global_deadline)
			abort_run(0);
		if (t >= deadline)
			return 0;
		uint64_t left = deadline < global_deadline ? deadline - t : global_deadline - t;
		if (left > 100 * MS)
			left = 100 * MS;
		struct timespec ts = {(time_t)(left / NS), (long)(left % NS)};
		int sig = sigtimedwait(&ctl_signals, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP)
			abort_run(sig);
	}
}

static int all_exited(void) { return nlive == 0; }

static void end_phase(void)
{
	kill_workers(); /* stragglers past the grace period: marked unfinished */
	nkids = 0;
	nlive = 0;
	group = 0;
}

/* ---------- JSON output ---------- */

static char *jbuf;
static size_t jlen, jcap;

static void jp(const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(jbuf + jlen, jcap - jlen, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < jcap - jlen) {
			jlen += (size_t)n;
			return;
		}
		jcap = jcap ? jcap * 2 : 65536;
		jbuf = realloc(jbuf, jcap);
		if (!jbuf)
			die("out of memory");
	}
}

static void emit(const char *json)
{
	printf("%s\n", json);
	fflush(stdout);
	if (out_path) {
		char tmp[4096];
		snprintf(tmp, sizeof tmp, "%s.tmp%d", out_path, (int)getpid());
		FILE *f = fopen(tmp, "w");
		if (!f || fprintf(f, "%s\n", json) < 0 || fclose(f) != 0 || rename(tmp, out_path) != 0)
			fprintf(stderr, "schedcp-probe: cannot write %s: %s\n", out_path, strerror(errno));
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* {"count":n,"p50_ms":..,"p99_ms":..,"max_ms":..,"mean_ms":..} of a slot's samples (sorted in place). */
static void jp_summary(struct slot *s)
{
	uint32_t n = s->nsamples;
	uint64_t *v = &samples[(size_t)s->sample_base * MAX_SAMPLES];
	if (s->sample_base == UINT32_MAX || n == 0) {
		jp("{\"count\":0,\"p50_ms\":null,\"p99_ms\":null,\"max_ms\":null,\"mean_ms\":null}");
		return;
	}
	qsort(v, n, sizeof(*v), cmp_u64);
	double sum = 0;
	for (uint32_t i = 0; i < n; i++)
		sum += (double)v[i];
	/* nearest-rank percentiles */
	uint32_t i50 = (uint32_t)ceil(0.50 * n) - 1, i99 = (uint32_t)ceil(0.99 * n) - 1;
	jp("{\"count\":%u,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"mean_ms\":%.3f}", n,
	   (double)v[i50] / MS, (double)v[i99] / MS, (double)v[n - 1] / MS, sum / n / MS);
}

static void jp_task(struct slot *s)
{
	jp("{\"class\":\"%s\",\"index\":%d,\"pid\":%d,\"nice\":%d,\"finished\":%s,\"exit_status\":%d,"
	   "\"cpu_s\":%.6f,\"wall_s\":%.6f,\"iters\":%llu,\"max_gap_ms\":%.3f",
	   cls_name[s->cls], s->index, s->pid, s->nice, s->finished ? "true" : "false", s->exit_status,
	   (double)s->cpu_ns / NS,
	   s->end_ns > s->start_ns ? (double)(s->end_ns - s->start_ns) / NS : 0.0,
	   (unsigned long long)s->iters, (double)s->max_gap_ns / MS);
	if (s->cls == C_INTERACTIVE) {
		jp(",\"wake\":");
		jp_summary(s);
		jp(",\"missed\":%llu", (unsigned long long)s->missed);
	} else if (s->cls == C_SHORT) {
		jp(",\"completed\":%llu,\"turnaround\":", (unsigned long long)s->count);
		jp_summary(s);
	}
	jp("}");
}

/* ---------- options ---------- */

struct opt {
	const char *name;
	char kind; /* 'd' double, 'i' int, 's' string */
	void *ptr;
};

static void parse_opts(int argc, char **argv, struct opt *opts)
{
	for (int i = 0; i < argc; i++) {
		struct opt *o = opts;
		while (o->name && strcmp(o->name, argv[i]) != 0)
			o++;
		if (!o->name)
			die("unknown option %s", argv[i]);
		if (i + 1 >= argc)
			die("%s needs a value", argv[i]);
		const char *v = argv[++i];
		char *end;
		if (o->kind == 's') {
			*(const char **)o->ptr = v;
			continue;
		}
		double d = strtod(v, &end);
		if (*end || end == v || !isfinite(d))
			die("%s: not a number: %s", o->name, v);
		if (o->kind == 'd')
			*(double *)o->ptr = d;
		else
			*(int *)o->ptr = (int)d;
	}
}

static int online_cpus(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

/* ---------- mixed / latency workers ---------- */

static uint64_t chunk_iters = 20000;

static void run_hog(struct slot *s, uint64_t end)
{
	if (s->nice)
		setpriority(PRIO_PROCESS, 0, s->nice);
	uint64_t x = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid(), n = 0;
	uint64_t last = now_ns();
	s->start_ns = last;
	for (;;) {
		x = spin(chunk_iters, x);
		s->iters += chunk_iters;
		uint64_t t = now_ns();
		if (t - last > s->max_gap_ns)
			s->max_gap_ns = t - last;
		last = t;
		s->end_ns = t;
		if ((++n & 15) == 0)
			s->cpu_ns = thread_cpu_ns();
		if (t >= end)
			break;
	}
	s->cpu_ns = thread_cpu_ns();
	sink = x;
	_exit(0);
}

/* Sleeps (2-5 ms, or a fixed period), wakes, does a short burst; wake delay = actual - intended. */
static void run_interactive(struct slot *s, uint64_t end, uint64_t period, uint64_t burst)
{
	uint64_t rng = 0x2545f4914f6cdd1dull ^ (uint64_t)getpid(), x = rng;
	uint64_t t0 = now_ns(), k = 0;
	s->start_ns = t0;
	for (;;) {
		x = spin(burst, x);
		s->iters += burst;
		uint64_t t = now_ns(), target;
		if (period) {
			do
				target = t0 + ++k * period;
			while (target <= t && ++s->missed);
		} else {
			target = t + 2 * MS + rng_next(&rng) % (3 * MS);
		}
		if (target >= end)
			break;
		struct timespec ts = {(time_t)(target / NS), (long)(target % NS)};
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		t = now_ns();
		uint64_t d = t - target;
		add_sample(s, d);
		if (d > s->max_gap_ns)
			s->max_gap_ns = d;
		s->end_ns = t;
		s->cpu_ns = thread_cpu_ns();
	}
	s->end_ns = now_ns();
	s->cpu_ns = thread_cpu_ns();
	sink = x;
	_exit(0);
}

/* Forks short-lived tasks (`par` in flight) until `end`; turnaround = fork to reaped. */
static void run_forker(struct slot *s, uint64_t end, int par, uint64_t short_iters)
{
	struct {
		pid_t pid;
		uint64_t start;
	} fl[64];
	int inflight = 0;
	pid_t me = getpid();
	if (par > 64)
		par = 64;
	s->start_ns = now_ns();
	for (;;) {
		while (inflight < par && now_ns() < end) {
			uint64_t t = now_ns();
			pid_t pid = fork();
			if (pid < 0)
				break;
			if (pid == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				if (getppid() != me)
					_exit(1);
				sink = spin(short_iters, (uint64_t)getpid() | 1);
				_exit(0);
			}
			fl[inflight].pid = pid;
			fl[inflight].start = t;
			inflight++;
		}
		if (inflight == 0)
			break;
		int st;
		struct rusage ru;
		pid_t pid = wait4(-1, &st, 0, &ru);
		if (pid < 0)
			break;
		uint64_t t = now_ns();
		for (int i = 0; i < inflight; i++) {
			if (fl[i].pid != pid)
				continue;
			uint64_t ta = t - fl[i].start;
			if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
				s->count++;
				s->iters += short_iters;
				add_sample(s, ta);
				if (ta > s->max_gap_ns)
					s->max_gap_ns = ta;
			}
			s->cpu_ns += (uint64_t)ru.ru_utime.tv_sec * NS + (uint64_t)ru.ru_utime.tv_usec * 1000 +
				     (uint64_t)ru.ru_stime.tv_sec * NS + (uint64_t)ru.ru_stime.tv_usec * 1000;
			fl[i] = fl[--inflight];
			break;
		}
		s->end_ns = t;
	}
	s->end_ns = now_ns();
	_exit(0);
}

/* ---------- mode: mixed ---------- */

struct phase {
	const char *name;
	double planned_s;
	uint64_t start, end, done;
	int first, last; /* slot range */
	int runnable;
};

static void jp_phase(struct phase *p)
{
	uint64_t iters = 0, shorts = 0;
	for (int i = p->first; i < p->last; i++) {
		iters += slots[i].iters;
		if (slots[i].cls == C_SHORT)
			shorts += slots[i].count;
	}
	double dur = (double)(p->end - p->start) / NS;
	jp("{\"name\":\"%s\",\"planned_s\":%.3f,\"duration_s\":%.6f,\"elapsed_s\":%.6f,"
	   "\"runnable\":%d,\"short_completed\":%llu,\"throughput_iters\":%llu,\"iters_per_s\":%.1f,"
	   "\"tasks\":[",
	   p->name, p->planned_s, dur, (double)(p->done - p->start) / NS, p->runnable,
	   (unsigned long long)shorts, (unsigned long long)iters, dur > 0 ? (double)iters / dur : 0.0);
	for (int i = p->first; i < p->last; i++) {
		if (i > p->first)
			jp(",");
		jp_task(&slots[i]);
	}
	jp("]}");
}

static double grace_s(double phase_s) { return 1.0 + 0.5 * phase_s; }

static int mode_mixed(int argc, char **argv)
{
	int ncpu = online_cpus();
	double light_s = 1.2, overload_s = 2.8, timeout = 0;
	int light_hogs = ncpu > 1 ? ncpu - 1 : 1, hogs = ncpu + 1, niced = ncpu / 2 > 0 ? ncpu / 2 : 1;
	int niced_nice = 10, short_par = ncpu, chunk = 20000, short_iters = 400000, burst = 20000;
	struct opt opts[] = {
		{"--light-s", 'd', &light_s},	  {"--overload-s", 'd', &overload_s},
		{"--light-hogs", 'i', &light_hogs}, {"--hogs", 'i', &hogs},
		{"--niced", 'i', &niced},	  {"--nice", 'i', &niced_nice},
		{"--short-par", 'i', &short_par}, {"--short-iters", 'i', &short_iters},
		{"--chunk", 'i', &chunk},	  {"--burst", 'i', &burst},
		{"--timeout", 'd', &timeout},	  {"--out", 's', &out_path},
		{NULL, 0, NULL}};
	parse_opts(argc, argv, opts);
	if (light_s < 0 || overload_s <= 0 || light_hogs < 0 || hogs < 0 || niced < 0 ||
	    short_par < 0 || chunk < 1 || short_iters < 1 || burst < 1 ||
	    light_hogs + hogs + niced + 4 > MAX_TASKS)
		die("mixed: bad arguments");
	chunk_iters = (uint64_t)chunk;
	if (timeout <= 0)
		timeout = 3 * (light_s + overload_s) + 20;
	global_deadline = t_begin + (uint64_t)(timeout * NS);
	shm_init(4);

	struct phase ph[2] = {{"light", light_s, 0, 0, 0, 0, 0, 0},
			      {"overload", overload_s, 0, 0, 0, 0, 0, 0}};
	for (int p = 0; p < 2; p++) {
		struct phase *P = &ph[p];
		P->first = nslots;
		int nh = p == 0 ? light_hogs : hogs, nn = p == 0 ? 0 : niced;
		int np = p == 0 ? 0 : short_par;
		P->runnable = nh + nn + np + 1;
		P->start = now_ns();
		uint64_t end = P->start + (uint64_t)(P->planned_s * NS);
		for (int i = 0; i < nh; i++) {
			struct slot *s = new_slot(C_HOG, 0, i, p, 0);
			if (spawn(s) == 0)
				run_hog(s, end);
		}
		for (int i = 0; i < nn; i++) {
			struct slot *s = new_slot(C_NICED, niced_nice, i, p, 0);
			if (spawn(s) == 0)
				run_hog(s, end);
		}
		if (np > 0) {
			struct slot *s = new_slot(C_SHORT, 0, 0, p, 1);
			if (spawn(s) == 0)
				run_forker(s, end, np, (uint64_t)short_iters);
		}
		struct slot *s = new_slot(C_INTERACTIVE, 0, 0, p, 1);
		if (spawn(s) == 0)
			run_interactive(s, end, 0, (uint64_t)burst);
		P->last = nslots;
		wait_until(end + (uint64_t)(grace_s(P->planned_s) * NS), all_exited);
		P->done = now_ns();
		P->end = end < P->done ? end : P->done;
		end_phase();
	}

	jp("{\"mode\":\"mixed\",\"version\":1,\"status\":\"ok\",\"ncpu\":%d,\"duration_s\":%.6f,"
	   "\"params\":{\"light_s\":%.3f,\"overload_s\":%.3f,\"light_hogs\":%d,\"hogs\":%d,"
	   "\"niced\":%d,\"nice\":%d,\"short_par\":%d,\"short_iters\":%d,\"chunk\":%d,\"burst\":%d},"
	   "\"phases\":[",
	   ncpu, (double)(now_ns() - t_begin) / NS, light_s, overload_s, light_hogs, hogs, niced,
	   niced_nice, short_par, short_iters, chunk, burst);
	jp_phase(&ph[0]);
	jp(",");
	jp_phase(&ph[1]);
	jp("]}");
	emit(jbuf);
	return 0;
}

/* ---------- mode: latency ---------- */

static int mode_latency(int argc, char **argv)
{
	int ncpu = online_cpus();
	double duration = 2.0, period_ms = 5.0, timeout = 0;
	int hogs = 2 * ncpu, chunk = 20000, burst = 20000;
	const char *pids_file = NULL, *barrier = NULL;
	struct opt opts[] = {{"--duration-s", 'd', &duration}, {"--hogs", 'i', &hogs},
			     {"--period-ms", 'd', &period_ms},	 {"--chunk", 'i', &chunk},
			     {"--burst", 'i', &burst},		 {"--timeout", 'd', &timeout},
			     {"--out", 's', &out_path},		 {"--pids-file", 's', &pids_file},
			     {"--start-barrier", 's', &barrier},	 {NULL, 0, NULL}};
	parse_opts(argc, argv, opts);
	if (duration <= 0 || hogs < 0 || hogs + 2 > MAX_TASKS || period_ms <= 0 || chunk < 1 ||
	    burst < 1)
		die("latency: bad arguments");
	chunk_iters = (uint64_t)chunk;
	if (timeout <= 0)
		timeout = 3 * duration + 20;
	global_deadline = t_begin + (uint64_t)(timeout * NS);
	shm_init(1);

	/* Workers wait on a pipe and read the end time from shared memory once released, so a
	 * harness can act on the pids file (e.g. fill a scheduler's map) before anything runs. */
	volatile uint64_t *end_at = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int rel[2];
	if (end_at == MAP_FAILED || pipe(rel) < 0)
		die("latency: %s", strerror(errno));
	for (int i = 0; i <= hogs; i++) {
		struct slot *s = i < hogs ? new_slot(C_HOG, 0, i, 0, 0) : new_slot(C_INTERACTIVE, 0, 0, 0, 1);
		if (spawn(s) == 0) {
			char c;
			close(rel[1]);
			while (read(rel[0], &c, 1) < 0 && errno == EINTR) /* EOF = released */
				;
			if (i < hogs)
				run_hog(s, *end_at);
			run_interactive(s, *end_at, (uint64_t)(period_ms * MS), (uint64_t)burst);
		}
	}
	close(rel[0]);
	struct slot *per = &slots[hogs];
	if (pids_file) /* "pid class" lines, atomically */
		write_pids(pids_file, 0);
	if (barrier)
		wait_barrier(barrier);
	uint64_t start = now_ns(), end = start + (uint64_t)(duration * NS);
	*end_at = end;
	close(rel[1]);
	wait_until(end + (uint64_t)(grace_s(duration) * NS), all_exited);
	uint64_t done = now_ns();
	end_phase();

	jp("{\"mode\":\"latency\",\"version\":1,\"status\":\"ok\",\"ncpu\":%d,\"duration_s\":%.6f,"
	   "\"elapsed_s\":%.6f,\"params\":{\"duration_s\":%.3f,\"hogs\":%d,\"period_ms\":%.3f,"
	   "\"chunk\":%d,\"burst\":%d},\"wake\":",
	   ncpu, (double)((end < done ? end : done) - start) / NS, (double)(done - t_begin) / NS,
	   duration, hogs, period_ms, chunk, burst);
	jp_summary(per);
	jp(",\"missed\":%llu,\"tasks\":[", (unsigned long long)per->missed);
	for (int i = 0; i < nslots; i++) {
		if (i)
			jp(",");
		jp_task(&slots[i]);
	}
	jp("]}");
	emit(jbuf);
	return 0;
}

/* ---------- mode: batch: four really different CPU-bound jobs ---------- */

enum { J_CHECKSUM, J_MATMUL, J_SORT, J_COMPRESS, NJOBS };
static const char *job_name[] = {"checksum", "matmul", "sort", "compress"};
static double unit_scale = 1.0;

static int reps(int base)
{
	int r = (int)lround(base * unit_scale);
	return r > 0 ? r : 1;
}

static uint32_t crc_table[256];

static uint64_t job_checksum(uint64_t seed)
{
	static uint8_t buf[1 << 16];
	if (!crc_table[1])
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
			crc_table[i] = c;
		}
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)rng_next(&seed);
	uint32_t crc = 0;
	for (int r = reps(96); r > 0; r--) {
		crc = ~crc;
		for (size_t i = 0; i < sizeof buf; i++)
			crc = crc_table[(crc ^ buf[i]) & 0xff] ^ (crc >> 8);
		crc = ~crc;
		buf[r % sizeof buf] ^= (uint8_t)crc;
	}
	return crc;
}

static uint64_t job_matmul(uint64_t seed)
{
	enum { N = 48 };
	static double a[N][N], b[N][N], c[N][N];
	for (int i = 0; i < N; i++)
		for (int j = 0; j < N; j++) {
			a[i][j] = (double)(rng_next(&seed) % 1000) / 1000.0;
			b[i][j] = (double)(rng_next(&seed) % 1000) / 1000.0;
		}
	for (int r = reps(40); r > 0; r--) {
		for (int i = 0; i < N; i++)
			for (int j = 0; j < N; j++) {
				double acc = 0;
				for (int k = 0; k < N; k++)
					acc += a[i][k] * b[k][j];
				c[i][j] = acc;
			}
		for (int i = 0; i < N; i++) /* feed back, normalised, so no step can be skipped */
			for (int j = 0; j < N; j++)
				a[i][j] = c[i][j] / (N * 0.25 + c[i][j]);
	}
	return (uint64_t)(c[N / 2][N / 3] * 1e6);
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

static uint64_t job_sort(uint64_t seed)
{
	enum { N = 8192 };
	static int v[N];
	uint64_t acc = 0;
	for (int r = reps(10); r > 0; r--) {
		for (int i = 0; i < N; i++)
			v[i] = (int)(rng_next(&seed) & 0x7fffffff);
		qsort(v, N, sizeof(int), cmp_int);
		acc += (uint64_t)v[N / 2];
	}
	return acc;
}

/* Greedy LZ77 with a 4-byte hash: emits literals/matches into a token count (no output kept). */
static uint64_t lz_compress(const uint8_t *in, size_t n, int32_t *head)
{
	enum { HB = 14 };
	uint64_t out = 0;
	memset(head, 0xff, sizeof(int32_t) << HB);
	size_t i = 0;
	while (i + 4 <= n) {
		uint32_t w;
		memcpy(&w, in + i, 4);
		uint32_t h = (w * 2654435761u) >> (32 - HB);
		int32_t cand = head[h];
		head[h] = (int32_t)i;
		size_t len = 0;
		if (cand >= 0 && i - (size_t)cand < 65535)
			while (i + len < n && len < 258 && in[(size_t)cand + len] == in[i + len])
				len++;
		if (len >= 4) {
			out += 3;
			i += len;
		} else {
			out += 1;
			i++;
		}
	}
	return out + (n - i);
}

static uint64_t job_compress(uint64_t seed)
{
	static const char *words[] = {"sched", "ext", "cpu", "task", "queue", "slice", "vtime",
				      "dispatch", "enqueue", "idle", "wake", "the", "a", "of"};
	static uint8_t buf[1 << 15];
	static int32_t head[1 << 14];
	size_t n = 0;
	while (n + 16 < sizeof buf) {
		const char *w = words[rng_next(&seed) % (sizeof words / sizeof *words)];
		size_t l = strlen(w);
		memcpy(buf + n, w, l);
		n += l;
		buf[n++] = rng_next(&seed) % 7 ? ' ' : (uint8_t)('0' + rng_next(&seed) % 10);
	}
	uint64_t acc = 0;
	for (int r = reps(150); r > 0; r--) {
		acc += lz_compress(buf, n, head);
		buf[r % n] ^= 1;
	}
	return acc;
}

static uint64_t run_job(int type, uint64_t units, uint64_t seed)
{
	uint64_t acc = 0;
	for (uint64_t u = 0; u < units; u++) {
		switch (type) {
		case J_CHECKSUM: acc += job_checksum(seed + u); break;
		case J_MATMUL: acc += job_matmul(seed + u); break;
		case J_SORT: acc += job_sort(seed + u); break;
		default: acc += job_compress(seed + u); break;
		}
	}
	return acc;
}

/* Atomically (the file existing means every pid is in it): "pid expected_work_units" lines
 * (batch) or "pid class" lines (latency). */
static void write_pids(const char *path, int units)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
	FILE *f = fopen(tmp, "w");
	if (!f)
		die("%s: %s", tmp, strerror(errno));
	for (int i = 0; i < nslots; i++)
		if (units)
			fprintf(f, "%d %llu\n", slots[i].pid, (unsigned long long)slots[i].units);
		else
			fprintf(f, "%d %s\n", slots[i].pid, cls_name[slots[i].cls]);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		die("%s: %s", path, strerror(errno));
}

/* Blocks until the harness releases the tasks: a FIFO gets a byte, or a plain path appears. */
static void wait_barrier(const char *path)
{
	struct stat st;
	int fd = -1;
	if (stat(path, &st) == 0 && S_ISFIFO(st.st_mode)) {
		fd = open(path, O_RDWR | O_NONBLOCK); /* RDWR: no EOF while no writer is connected */
		if (fd < 0)
			die("barrier %s: %s", path, strerror(errno));
	}
	for (;;) {
		if (fd >= 0) {
			struct pollfd pfd = {fd, POLLIN, 0};
			char c;
			if (poll(&pfd, 1, 20) > 0 && read(fd, &c, 1) > 0) {
				close(fd);
				return;
			}
		} else {
			if (stat(path, &st) == 0)
				return;
			struct timespec ts = {0, 20 * MS};
			nanosleep(&ts, NULL);
		}
		uint64_t t = now_ns();
		if (t >= global_deadline)
			abort_run(0);
		struct timespec zero = {0, 0};
		int sig = sigtimedwait(&ctl_signals, NULL, &zero);
		if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP)
			abort_run(sig);
		reap_nonblocking();
	}
}

/* The fastest of 3 runs of one unit of each job type. */
static void calibrate(const int *types, int ntypes, double *unit_s)
{
	for (int k = 0; k < ntypes; k++)
		for (int rep = 0; rep < 3; rep++) {
			uint64_t t = now_ns();
			sink = run_job(types[k], 1, 12345u + (uint64_t)rep);
			double d = (double)(now_ns() - t) / NS;
			if (rep == 0 || d < unit_s[types[k]])
				unit_s[types[k]] = d;
		}
}

static int mode_batch(int argc, char **argv)
{
	int ncpu = online_cpus(), tasks = 40, short_units = 4, long_index = -1;
	double long_factor = 40, timeout = 0;
	const char *pids_file = NULL, *barrier = NULL, *types_s = "checksum,matmul,sort,compress";
	const char *calib_s = "both";
	struct opt opts[] = {{"--tasks", 'i', &tasks},		{"--short-units", 'i', &short_units},
			     {"--long-factor", 'd', &long_factor}, {"--long-index", 'i', &long_index},
			     {"--unit-scale", 'd', &unit_scale},   {"--types", 's', &types_s},
			     {"--pids-file", 's', &pids_file},	   {"--start-barrier", 's', &barrier},
			     {"--timeout", 'd', &timeout},	   {"--out", 's', &out_path},
			     {"--calibrate", 's', &calib_s},	   {NULL, 0, NULL}};
	parse_opts(argc, argv, opts);
	/* "none": a workload for someone else's measurement (the demo): no serial prologue
	 * that no scheduler can shorten, and no bound (reported as 0). */
	int calib_solo = !strcmp(calib_s, "both") || !strcmp(calib_s, "solo");
	int calib_loaded = !strcmp(calib_s, "both");
	if (!calib_solo && strcmp(calib_s, "none"))
		die("batch: --calibrate takes both, solo or none");
	if (tasks < 1 || tasks > MAX_TASKS || short_units < 1 || long_factor < 1 || unit_scale <= 0)
		die("batch: bad arguments");
	if (long_index < 0 || long_index >= tasks)
		long_index = tasks - 1;
	int types[NJOBS], ntypes = 0;
	for (int j = 0; j < NJOBS; j++)
		if (strstr(types_s, job_name[j]))
			types[ntypes++] = j;
	if (!ntypes)
		die("batch: --types names none of checksum,matmul,sort,compress");
	if (timeout <= 0)
		timeout = 600;
	global_deadline = t_begin + (uint64_t)(timeout * NS);
	shm_init(0);

	/* Calibration in this run, before any task exists: one unit of each job type, the
	 * fastest of 3 tries (noise only ever adds time), once solo and once with every other
	 * CPU kept busy. The batch keeps all CPUs busy, and on a virtual machine (qemu TCG: the
	 * vCPUs share the host's caches and cores) a loaded CPU is ~10 % slower than a lone one,
	 * so the bound uses the loaded unit time; the solo bound is reported beside it. */
	double unit_s[NJOBS] = {0}, solo_s[NJOBS] = {0};
	if (calib_solo)
		calibrate(types, ntypes, solo_s);
	pid_t spin[MAX_TASKS];
	int nspin = 0;
	for (int c = 1; calib_loaded && c < ncpu && nspin < MAX_TASKS; c++) {
		pid_t pid = fork();
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent_pid)
				_exit(1);
			for (volatile uint64_t x = 0;; x++)
				;
		}
		if (pid > 0)
			spin[nspin++] = pid;
	}
	if (calib_loaded)
		calibrate(types, ntypes, unit_s);
	else
		memcpy(unit_s, solo_s, sizeof unit_s);
	for (int c = 0; c < nspin; c++) {
		kill(spin[c], SIGKILL);
		waitpid(spin[c], NULL, 0);
	}

	int rel[2];
	if (pipe(rel) < 0)
		die("pipe: %s", strerror(errno));
	uint64_t long_units = (uint64_t)llround(short_units * long_factor);
	for (int i = 0; i < tasks; i++) {
		int type = types[i % ntypes];
		struct slot *s = new_slot(C_JOB, 0, i, 0, 0);
		s->job_type = type;
		s->units = i == long_index ? long_units : (uint64_t)short_units;
		if (spawn(s) == 0) {
			char c;
			close(rel[1]);
			while (read(rel[0], &c, 1) < 0 && errno == EINTR) /* EOF = released */
				;
			close(rel[0]);
			s->start_ns = now_ns();
			uint64_t c0 = thread_cpu_ns();
			sink = run_job(type, s->units, 777u + (uint64_t)i);
			s->end_ns = now_ns();
			s->cpu_ns = thread_cpu_ns() - c0;
			_exit(0);
		}
	}
	close(rel[0]);
	if (pids_file)
		write_pids(pids_file, 1);
	if (barrier)
		wait_barrier(barrier);
	uint64_t released = now_ns();
	close(rel[1]);
	wait_until(global_deadline, all_exited);

	uint64_t last_end = released;
	double total_est = 0, longest_est = 0, total_solo = 0, longest_solo = 0;
	int all_ok = 1;
	for (int i = 0; i < nslots; i++) {
		struct slot *s = &slots[i];
		all_ok &= s->finished;
		if (s->end_ns > last_end)
			last_end = s->end_ns;
		double est = (double)s->units * unit_s[s->job_type];
		double solo = (double)s->units * solo_s[s->job_type];
		total_est += est;
		total_solo += solo;
		if (est > longest_est)
			longest_est = est;
		if (solo > longest_solo)
			longest_solo = solo;
	}
	double makespan = (double)(last_end - released) / NS;
	double bound = fmax(longest_est, total_est / ncpu);
	double bound_solo = fmax(longest_solo, total_solo / ncpu);
	jp("{\"mode\":\"batch\",\"version\":1,\"status\":\"%s\",\"ncpu\":%d,\"makespan_s\":%.6f,"
	   "\"lower_bound_s\":%.6f,\"lower_bound_solo_s\":%.6f,\"ratio\":%.4f,"
	   "\"total_work_est_s\":%.6f,\"longest_est_s\":%.6f,"
	   "\"elapsed_s\":%.6f,\"params\":{\"tasks\":%d,\"short_units\":%d,\"long_factor\":%.3f,"
	   "\"long_index\":%d,\"unit_scale\":%.4f},\"calibration_unit_s\":{",
	   all_ok ? "ok" : "failed", ncpu, makespan, bound, bound_solo,
	   bound > 0 ? makespan / bound : 0.0,
	   total_est, longest_est, (double)(now_ns() - t_begin) / NS, tasks, short_units,
	   long_factor, long_index, unit_scale);
	for (int k = 0; k < ntypes; k++)
		jp("%s\"%s\":%.6f", k ? "," : "", job_name[types[k]], unit_s[types[k]]);
	jp("},\"tasks\":[");
	for (int i = 0; i < nslots; i++) {
		struct slot *s = &slots[i];
		jp("%s{\"job\":\"%s\",\"index\":%d,\"pid\":%d,\"long\":%s,\"units\":%llu,"
		   "\"est_s\":%.6f,\"start_s\":%.6f,\"end_s\":%.6f,\"runtime_s\":%.6f,\"cpu_s\":%.6f,"
		   "\"finished\":%s}",
		   i ? "," : "", job_name[s->job_type], s->index, s->pid,
		   s->index == long_index ? "true" : "false", (unsigned long long)s->units,
		   (double)s->units * unit_s[s->job_type],
		   s->start_ns ? ((double)s->start_ns - (double)released) / NS : -1.0,
		   s->end_ns ? ((double)s->end_ns - (double)released) / NS : -1.0,
		   s->end_ns > s->start_ns ? (double)(s->end_ns - s->start_ns) / NS : 0.0,
		   (double)s->cpu_ns / NS, s->finished ? "true" : "false");
	}
	jp("]}");
	emit(jbuf);
	end_phase();
	return all_ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		die("usage: schedcp-probe mixed|batch|latency [--option value]...");
	t_begin = now_ns();
	parent_pid = getpid();
	sigemptyset(&ctl_signals);
	sigaddset(&ctl_signals, SIGCHLD);
	sigaddset(&ctl_signals, SIGINT);
	sigaddset(&ctl_signals, SIGTERM);
	sigaddset(&ctl_signals, SIGHUP);
	sigprocmask(SIG_BLOCK, &ctl_signals, NULL); /* handled synchronously by sigtimedwait */
	mode_name = argv[1];
	if (!strcmp(argv[1], "mixed"))
		return mode_mixed(argc - 2, argv + 2);
	if (!strcmp(argv[1], "batch"))
		return mode_batch(argc - 2, argv + 2);
	if (!strcmp(argv[1], "latency"))
		return mode_latency(argc - 2, argv + 2);
	die("unknown mode %s (mixed|batch|latency)", argv[1]);
}
