/*
 * prompt.h - reading passwords: from the terminal with echo off, or one
 * line at a time from standard input (--password-stdin). Never from argv,
 * never through stdio buffers that would keep a copy.
 */
#ifndef NOVACTL_PROMPT_H
#define NOVACTL_PROMPT_H

#include <stdbool.h>
#include <stddef.h>

/* Longest password accepted (the API takes up to 1024 bytes). */
#define PROMPT_MAX_PASSWORD 1024

/* Reads one password into buf (len > PROMPT_MAX_PASSWORD): the next line
 * of stdin when from_stdin, else from /dev/tty after printing `prompt`
 * there. Returns 0, or prints the reason and returns EXIT_USAGE (no
 * terminal, empty, too long, end of input). The caller wipes buf. */
int prompt_password(const char *command, const char *prompt, bool from_stdin, char *buf,
                    size_t len);

/* Like prompt_password, but on a terminal asks twice and insists the two
 * agree (for new passwords). */
int prompt_new_password(const char *command, const char *prompt, bool from_stdin, char *buf,
                        size_t len);

#endif
