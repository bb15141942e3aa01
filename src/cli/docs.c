/* docs.c - the man page dgmigrate(1) and the bash completion, generated
 * from the same command and option tables as --help, so the three cannot
 * drift apart (tests/unit/test_cli_docs.c checks each names every
 * command and option). */
#include <stdio.h>
#include <string.h>

#include "dgm/cli.h"

/* Text for roff: a backslash is "\e", a hyphen "\-" (so man renders the
 * minus of an option), and a line may not start with '.' or '\''. */
static void roff_text(FILE *f, const char *s)
{
	bool bol = true;

	for (; *s; s++) {
		if (bol && (*s == '.' || *s == '\''))
			fputs("\\&", f);
		if (*s == '\\')
			fputs("\\e", f);
		else if (*s == '-')
			fputs("\\-", f);
		else
			fputc(*s, f);
		bol = *s == '\n';
	}
}

/* A description's lines as roff: kept as they are (.nf) where they are
 * laid out as a table (lines starting with two spaces or a word followed
 * by several spaces), filled otherwise. */
static void roff_paragraph(FILE *f, const char *s)
{
	bool table = strstr(s, "   ") != NULL;

	if (table)
		fputs(".nf\n", f);
	roff_text(f, s);
	fputs(table ? "\n.fi\n" : "\n", f);
}

static void roff_opts(FILE *f, const dgm_opt *o)
{
	for (; o && o->name; o++) {
		fputs(".TP\n", f);
		if (o->short_name)
			fprintf(f, "\\fB\\-%c\\fR, ", o->short_name);
		fputs("\\fB\\-\\-", f);
		roff_text(f, o->name);
		fputs("\\fR", f);
		if (o->arg) {
			fputs(" \\fI", f);
			roff_text(f, o->arg);
			fputs("\\fR", f);
		}
		fputc('\n', f);
		roff_text(f, o->help);
		fputc('\n', f);
	}
}

void dgm_cli_write_man(FILE *f, const char *version)
{
	fprintf(f, ".TH DGMIGRATE 1 \"\" \"dgmigrate %s\" \"User Commands\"\n", version);
	fputs(".SH NAME\ndgmigrate \\- apply and undo database releases of Alembic-managed "
	      "applications on PostgreSQL\n.SH SYNOPSIS\n", f);
	for (const dgm_cmd *c = dgm_commands; c->name; c++) {
		fprintf(f, ".B dgmigrate %s\n", c->name);
		roff_text(f, c->usage);
		fputs("\n.br\n", f);
	}
	fputs(".SH DESCRIPTION\n", f);
	roff_text(f, "dgmigrate turns a release checklist (back up the database, archive the "
		  "model store, check out the release tag, alembic upgrade, check the result, "
		  "and put everything back when it goes wrong) into one command that checks "
		  "every step and records what it did. A YAML release plan says everything "
		  "about a release; see plans/example.yaml.");
	fputs("\n.SH COMMANDS\n", f);
	for (const dgm_cmd *c = dgm_commands; c->name; c++) {
		fprintf(f, ".SS \"%s\"\n", c->name);
		fputs(".B dgmigrate ", f);
		roff_text(f, c->name);
		fputc(' ', f);
		roff_text(f, c->usage);
		fputs("\n.PP\n", f);
		roff_text(f, c->summary);
		fputs(".\n.PP\n", f);
		if (c->description && *c->description)
			roff_paragraph(f, c->description);
		if (c->opts && c->opts->name) {
			fputs(".PP\nOptions:\n.RS\n", f);
			roff_opts(f, c->opts);
			fputs(".RE\n", f);
		}
	}
	fputs(".SH COMMON OPTIONS\n", f);
	roff_opts(f, dgm_cli_global_opts());
	fputs(".TP\n\\fB\\-\\-version\\fR\nprint the version and exit (before the command)\n", f);
	fputs(".SH EXIT STATUS\n.TP\n0\nsuccess\n.TP\n1\nthe run failed\n.TP\n2\nbad usage or "
	      "bad plan\n.TP\n3\nanother run holds the database's lock\n", f);
	fputs(".SH ENVIRONMENT\n.TP\n\\fBDGMIGRATE_PLAN\\fR\nthe plan of \\fBrollback\\fR when "
	      "none is given\n.TP\n\\fIVAR\\fR\nthe plan's ${VAR} placeholders expand from the "
	      "environment; values of secret variables are never printed\n", f);
	fputs(".SH SEE ALSO\n.BR pg_dump (1),\n.BR pg_restore (1),\n.BR alembic (1),\n"
	      ".BR git (1)\n", f);
}

/* The words of an option table, "--name" and "-x". */
static void bash_words(FILE *f, const dgm_opt *o)
{
	for (; o && o->name; o++) {
		fprintf(f, " --%s", o->name);
		if (o->short_name)
			fprintf(f, " -%c", o->short_name);
	}
}

/* Options whose value is a file or a folder, for the completion. */
static const char *bash_value_kind(const dgm_opt *o)
{
	if (!strcmp(o->arg, "FILE"))
		return "file";
	if (!strcmp(o->arg, "DIR"))
		return "dir";
	return "none";
}

void dgm_cli_write_bash_completion(FILE *f)
{
	fputs("# bash completion for dgmigrate, generated from its option tables\n"
	      "_dgmigrate() {\n"
	      "\tlocal cur prev cmd words\n"
	      "\tcur=${COMP_WORDS[COMP_CWORD]}\n"
	      "\tprev=${COMP_WORDS[COMP_CWORD-1]}\n"
	      "\tcmd=${COMP_WORDS[1]}\n"
	      "\tif [[ $COMP_CWORD -eq 1 ]]; then\n"
	      "\t\tCOMPREPLY=($(compgen -W '--help --version", f);
	for (const dgm_cmd *c = dgm_commands; c->name; c++)
		fprintf(f, " %s", c->name);
	fputs("' -- \"$cur\"))\n\t\treturn\n\tfi\n\tcase $cmd:$prev in\n", f);
	for (const dgm_cmd *c = dgm_commands; c->name; c++)
		for (const dgm_opt *o = c->opts; o && o->name; o++)
			if (o->arg)
				fprintf(f, "\t%s:--%s) %s;;\n", c->name, o->name,
					!strcmp(bash_value_kind(o), "file") ?
					"COMPREPLY=($(compgen -f -- \"$cur\")); return" :
					!strcmp(bash_value_kind(o), "dir") ?
					"COMPREPLY=($(compgen -d -- \"$cur\")); return" :
					"return");
	fputs("\tesac\n\tcase $cmd in\n", f);
	for (const dgm_cmd *c = dgm_commands; c->name; c++) {
		fprintf(f, "\t%s) words='", c->name);
		bash_words(f, c->opts);
		bash_words(f, dgm_cli_global_opts());
		if (!strcmp(c->name, "backups"))
			fputs(" list create verify restore prune", f);
		fputs("';;\n", f);
	}
	fputs("\t*) return;;\n\tesac\n"
	      "\tif [[ $cur == -* ]]; then\n"
	      "\t\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
	      "\telse\n"
	      "\t\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\") $(compgen -f -X '!*.y*ml' -- \"$cur\") "
	      "$(compgen -d -- \"$cur\"))\n"
	      "\tfi\n"
	      "}\n"
	      "complete -F _dgmigrate dgmigrate\n", f);
}
