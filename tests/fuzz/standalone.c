/*
 * standalone.c - run a fuzz harness without libFuzzer (as LLVM's
 * StandaloneFuzzTargetMain.c does): LLVMFuzzerTestOneInput once over
 * every file named on the command line or found in the folders named
 * (one level deep, sorted, so runs repeat). Built with the normal
 * compiler and sanitizers, this is how `make check` keeps every seed
 * and every past finding passing without fuzzing time or clang.
 *
 * Each input is announced on stderr before it runs, so that a crash or
 * a sanitizer report is followed back to its file. An input that runs
 * longer than FUZZ_INPUT_SECONDS (default 60) is a hang: the driver
 * aborts naming it.
 */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static const char *current = "";

static void on_alarm(int sig)
{
	static const char msg[] = "fuzz: input ran too long (a hang): ";

	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	(void)!write(2, current, strlen(current));
	(void)!write(2, "\n", 1);
	abort();
}

static int run_file(const char *path, unsigned limit)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data = NULL;
	size_t size = 0, cap = 0, got;

	if (!f) {
		fprintf(stderr, "fuzz: cannot open '%s'\n", path);
		return -1;
	}
	do {
		if (size == cap) {
			cap = cap ? 2 * cap : 4096;
			data = realloc(data, cap);
			if (!data)
				abort();
		}
		got = fread(data + size, 1, cap - size, f);
		size += got;
	} while (got > 0);
	fclose(f);
	/* an exact-size copy, so that ASan sees reads past the input */
	{
		uint8_t *copy = malloc(size ? size : 1);

		if (!copy)
			abort();
		memcpy(copy, data, size);
		free(data);
		data = copy;
	}
	current = path;
	fprintf(stderr, "fuzz: %s (%zu bytes)\n", path, size);
	alarm(limit);
	LLVMFuzzerTestOneInput(data, size);
	alarm(0);
	free(data);
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of DIR, sorted; *count of them run. */
static int run_dir(const char *dir, unsigned limit, size_t *count)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	int ret = 0;

	if (!d) {
		fprintf(stderr, "fuzz: cannot open folder '%s'\n", dir);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		names = realloc(names, (n + 1) * sizeof(*names));
		if (!names || asprintf(&names[n], "%s/%s", dir, de->d_name) < 0)
			abort();
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), by_name);
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		if (ret == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
			ret = run_file(names[i], limit);
			(*count)++;
		}
		free(names[i]);
	}
	free(names);
	return ret;
}

int main(int argc, char **argv)
{
	const char *env = getenv("FUZZ_INPUT_SECONDS");
	unsigned limit = env && atoi(env) > 0 ? (unsigned)atoi(env) : 60;
	size_t count = 0;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	signal(SIGALRM, on_alarm);
	for (int i = 1; i < argc; i++) {
		struct stat st;
		int rc;

		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "fuzz: no such file or folder '%s'\n", argv[i]);
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			rc = run_dir(argv[i], limit, &count);
		} else {
			rc = run_file(argv[i], limit);
			count++;
		}
		if (rc != 0)
			return 1;
	}
	printf("%s: %zu inputs ran\n", argv[0], count);
	return 0;
}
