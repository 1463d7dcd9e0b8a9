/*
 * prompt.c - password input (see prompt.h). The terminal's echo is turned
 * off for the read and restored afterwards, also when SIGINT, SIGTERM,
 * SIGHUP or SIGQUIT arrive meanwhile (the handler restores it and re-raises
 * the signal). Input is read byte by byte with read(2) so no stdio buffer
 * keeps a copy of the password.
 */
#include "prompt.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "output.h"

static const int restore_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define NSIGNALS (sizeof(restore_signals) / sizeof(restore_signals[0]))

/* The terminal to restore from a signal handler. */
static volatile sig_atomic_t tty_fd = -1;
static struct termios tty_saved;

static void restore_and_reraise(int sig) {
  if (tty_fd >= 0) {
    tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
    (void)!write(tty_fd, "\n", 1);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

/* Reads one line from fd into buf without its newline. 0 ok, 1 end of
 * input before anything, 2 too long, -1 error. */
static int read_line(int fd, char *buf, size_t len) {
  size_t n = 0;
  bool any = false;
  for (;;) {
    char c;
    ssize_t r = read(fd, &c, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) {
      if (!any) return 1;
      break;
    }
    any = true;
    if (c == '\n') break;
    if (n + 1 >= len) {
      /* drain the rest of the line so it does not become the next input */
      while ((r = read(fd, &c, 1)) > 0 && c != '\n') {
      }
      buf[0] = '\0';
      return 2;
    }
    buf[n++] = c;
  }
  if (n > 0 && buf[n - 1] == '\r') n--;
  buf[n] = '\0';
  return 0;
}

static int read_from_tty(const char *command, const char *prompt, char *buf, size_t len) {
  struct sigaction old[NSIGNALS];
  struct sigaction sa;
  struct termios quiet;
  int rc = 0;
  int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return out_usage_error(command, "no terminal to read the password from: use --password-stdin");
  if (tcgetattr(fd, &tty_saved) != 0) {
    close(fd);
    return out_usage_error(command, "cannot read from the terminal: use --password-stdin");
  }
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = restore_and_reraise;
  sigemptyset(&sa.sa_mask);
  tty_fd = fd;
  for (size_t i = 0; i < NSIGNALS; i++)
    sigaction(restore_signals[i], &sa, &old[i]);
  quiet = tty_saved;
  quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
  quiet.c_lflag |= ECHONL;
  (void)!write(fd, prompt, strlen(prompt));
  tcsetattr(fd, TCSAFLUSH, &quiet);
  int r = read_line(fd, buf, len);
  tcsetattr(fd, TCSAFLUSH, &tty_saved);
  tty_fd = -1;
  for (size_t i = 0; i < NSIGNALS; i++)
    sigaction(restore_signals[i], &old[i], NULL);
  close(fd);
  if (r == 1) rc = out_usage_error(command, "no password given");
  if (r == 2)
    rc = out_usage_error(command, "the password is longer than %d bytes", PROMPT_MAX_PASSWORD);
  if (r < 0) rc = out_usage_error(command, "cannot read the password: %s", strerror(errno));
  return rc;
}

int prompt_password(const char *command, const char *prompt, bool from_stdin, char *buf,
                    size_t len) {
  int rc;
  buf[0] = '\0';
  if (len <= PROMPT_MAX_PASSWORD) return out_usage_error(command, "password buffer too small");
  if (from_stdin) {
    int r = read_line(STDIN_FILENO, buf, PROMPT_MAX_PASSWORD + 1);
    if (r == 1) return out_usage_error(command, "--password-stdin: no password on stdin");
    if (r == 2)
      return out_usage_error(command, "the password is longer than %d bytes", PROMPT_MAX_PASSWORD);
    if (r < 0) return out_usage_error(command, "cannot read stdin: %s", strerror(errno));
  } else if ((rc = read_from_tty(command, prompt, buf, PROMPT_MAX_PASSWORD + 1)) != 0) {
    return rc;
  }
  if (!buf[0]) return out_usage_error(command, "the password is empty");
  return 0;
}

int prompt_new_password(const char *command, const char *prompt, bool from_stdin, char *buf,
                        size_t len) {
  char again[PROMPT_MAX_PASSWORD + 2];
  int rc = prompt_password(command, prompt, from_stdin, buf, len);
  if (rc != 0 || from_stdin) return rc;
  rc = prompt_password(command, "Repeat it: ", false, again, sizeof(again));
  if (rc == 0 && strcmp(buf, again) != 0) {
    explicit_bzero(buf, len);
    rc = out_usage_error(command, "the passwords do not match");
  }
  explicit_bzero(again, sizeof(again));
  return rc;
}
