/* Loading from search paths (lib/init/load*.c, install.c) on real directories: priority,
 * aliases, masks, templates, drop-ins, .wants/.requires, and the [Install] link sets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/mem.h"
#include "init/load.h"
#include "init/unit.h"
#include "test_init_util.h"
#include "testutil.h"

static struct keel_host_info host = {
	.hostname = "h", .machine_id = "0123456789abcdef0123456789abcdef",
	.boot_id = "fedcba9876543210fedcba9876543210", .kernel_release = "6", .architecture = "x86-64",
	.user_name = "root", .user_home = "/root", .user_shell = "/bin/sh", .group_name = "root",
};

struct fx {
	char root[64];
	char etc[128], run[128], lib[128], out[128];
	struct keel_loader *l;
	struct diag_log log;
};

static void put(struct fx *f, const char *dir, const char *rel, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (char *s = path + strlen(dir) + 1; *s; s++) {
		if (*s == '/') {
			*s = '\0';
			mkdir(path, 0755);
			*s = '/';
		}
	}
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void link_to(struct fx *f, const char *dir, const char *rel, const char *target)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (char *s = path + strlen(dir) + 1; *s; s++) {
		if (*s == '/') {
			*s = '\0';
			mkdir(path, 0755);
			*s = '/';
		}
	}
	assert_int_equal(symlink(target, path), 0);
}

static void reload(struct fx *f)
{
	keel_loader_free(f->l);
	const char *paths[] = {f->etc, f->run, f->lib, NULL};
	struct keel_loader_config cfg = {.search_path = paths, .host = &host, .sink = {diag_collect, &f->log}};
	assert_int_equal(keel_loader_new(&cfg, &f->l), 0);
}

static int setup(void **state)
{
	struct fx *f = keel_calloc(1, sizeof(*f));
	assert_int_equal(test_make_tmpdir("init-load", f->root, sizeof(f->root)), 0);
	snprintf(f->etc, sizeof(f->etc), "%s/etc", f->root);
	snprintf(f->run, sizeof(f->run), "%s/run", f->root);
	snprintf(f->lib, sizeof(f->lib), "%s/lib", f->root);
	snprintf(f->out, sizeof(f->out), "%s/outside", f->root);
	mkdir(f->etc, 0755);
	mkdir(f->run, 0755);
	mkdir(f->lib, 0755);
	mkdir(f->out, 0755);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	keel_loader_free(f->l);
	test_remove_tree(f->root);
	keel_free(f);
	return 0;
}

static struct keel_unit *load(struct fx *f, const char *name)
{
	struct keel_unit *u = NULL;
	memset(&f->log, 0, sizeof(f->log));
	assert_int_equal(keel_loader_load(f->l, name, &u), 0);
	return u;
}

static const char *desc(const struct keel_unit *u)
{
	return u->description ? u->description : "(none)";
}

static void load_search_path_priority(void **state)
{
	struct fx *f = *state;
	put(f, f->lib, "a.service", "[Unit]\nDescription=lib\n[Service]\nExecStart=/bin/true\n");
	put(f, f->run, "a.service", "[Unit]\nDescription=run\n[Service]\nExecStart=/bin/true\n");
	put(f, f->lib, "b.service", "[Unit]\nDescription=lib-b\n[Service]\nExecStart=/bin/true\n");
	reload(f);
	struct keel_unit *u = load(f, "a.service");
	assert_string_equal(desc(u), "run");
	keel_unit_free(u);
	u = load(f, "b.service");
	assert_string_equal(desc(u), "lib-b");
	keel_unit_free(u);
	u = load(f, "missing.service");
	assert_int_equal(u->load_state, KEEL_LOAD_NOT_FOUND);
	keel_unit_free(u);
	/* names of types keel-init does not run are refused, as are templates */
	assert_int_equal(keel_loader_load(f->l, "x.mount", &u), -EINVAL);
	assert_int_equal(keel_loader_load(f->l, "x@.service", &u), -EINVAL);
	assert_int_equal(keel_loader_load(f->l, "bad name.service", &u), -EINVAL);
	/* the search path as it was found */
	const char *const *sp = keel_loader_search_path(f->l);
	assert_string_equal(sp[0], f->etc);
	assert_string_equal(sp[2], f->lib);
	assert_null(sp[3]);
	/* a directory added in front wins over all of them, one at the end loses */
	put(f, f->out, "a.service", "[Unit]\nDescription=front\n[Service]\nExecStart=/bin/true\n");
	put(f, f->out, "c.service", "[Unit]\nDescription=only-here\n[Service]\nExecStart=/bin/true\n");
	assert_int_equal(keel_loader_add_path(f->l, f->out, true), 0);
	u = load(f, "a.service");
	assert_string_equal(desc(u), "front");
	keel_unit_free(u);
	assert_int_equal(keel_loader_add_path(f->l, f->etc, false), 0); /* already there: searched once */
	assert_string_equal(keel_loader_search_path(f->l)[0], f->out);
	assert_null(keel_loader_search_path(f->l)[4]);
	u = load(f, "c.service");
	assert_string_equal(desc(u), "only-here");
	keel_unit_free(u);
}

static void load_masks(void **state)
{
	struct fx *f = *state;
	put(f, f->lib, "a.service", "[Service]\nExecStart=/bin/true\n");
	link_to(f, f->etc, "a.service", "/dev/null");
	put(f, f->etc, "b.service", "");
	put(f, f->lib, "t@.service", "[Service]\nExecStart=/bin/true\n");
	link_to(f, f->run, "t@.service", "/dev/null");
	reload(f);
	struct keel_unit *u = load(f, "a.service");
	assert_int_equal(u->load_state, KEEL_LOAD_MASKED);
	keel_unit_free(u);
	u = load(f, "b.service"); /* an empty file masks too */
	assert_int_equal(u->load_state, KEEL_LOAD_MASKED);
	keel_unit_free(u);
	u = load(f, "t@x.service"); /* a masked template masks its instances */
	assert_int_equal(u->load_state, KEEL_LOAD_MASKED);
	keel_unit_free(u);
}

static void load_aliases_and_links(void **state)
{
	struct fx *f = *state;
	char target[256];
	put(f, f->lib, "real.service", "[Unit]\nDescription=real\n[Service]\nExecStart=/bin/true\n");
	link_to(f, f->etc, "alias.service", "../lib/real.service");
	put(f, f->etc, "alias.service.d/x.conf", "[Unit]\nDescription=via alias drop-in\n");
	snprintf(target, sizeof(target), "%s/linked.service", f->out);
	put(f, f->out, "linked.service", "[Unit]\nDescription=linked\n[Service]\nExecStart=/bin/true\n");
	link_to(f, f->etc, "linked.service", target);
	link_to(f, f->etc, "bad-alias.socket", "../lib/real.service"); /* type mismatch */
	link_to(f, f->etc, "loop1.service", "loop2.service");
	link_to(f, f->etc, "loop2.service", "loop1.service");
	reload(f);
	assert_true(diag_has(&f->log, "bad-alias.socket: symlink target \"real.service\" has incompatible suffix, rejecting."));

	struct keel_unit *u = load(f, "alias.service");
	assert_string_equal(u->id, "real.service");
	assert_string_equal(u->aliases[0], "alias.service");
	assert_string_equal(desc(u), "via alias drop-in"); /* the alias' drop-ins apply */
	keel_unit_free(u);
	u = load(f, "real.service"); /* loaded by its own name it knows its alias too */
	assert_string_equal(u->aliases[0], "alias.service");
	keel_unit_free(u);

	struct keel_unit_lookup lu;
	assert_int_equal(keel_loader_lookup(f->l, "alias.service", &lu), 0);
	assert_string_equal(lu.id, "real.service");
	assert_true(lu.found);

	u = load(f, "linked.service"); /* outside the search path: loaded under the link's name */
	assert_string_equal(u->id, "linked.service");
	assert_string_equal(desc(u), "linked");
	keel_unit_free(u);

	u = load(f, "bad-alias.socket");
	assert_int_equal(u->load_state, KEEL_LOAD_NOT_FOUND);
	keel_unit_free(u);
	u = load(f, "loop1.service");
	assert_int_equal(u->load_state, KEEL_LOAD_ERROR);
	assert_int_equal(u->load_error, -ELOOP);
	keel_unit_free(u);
}

static void load_templates_and_instances(void **state)
{
	struct fx *f = *state;
	put(f, f->lib, "getty@.service",
	    "[Unit]\nDescription=Getty on %I\n[Service]\nExecStart=/sbin/agetty %i\n");
	put(f, f->lib, "getty@tty9.service",
	    "[Unit]\nDescription=special\n[Service]\nExecStart=/bin/true\n");
	put(f, f->lib, "getty@.service.d/10-all.conf", "[Service]\nRestart=always\n");
	put(f, f->lib, "getty@tty2.service.d/20-one.conf", "[Service]\nRestart=on-failure\n");
	link_to(f, f->lib, "tty@.service", "getty@.service");
	reload(f);
	struct keel_unit *u = load(f, "getty@tty-1.service");
	assert_string_equal(desc(u), "Getty on tty/1");
	assert_string_equal(keel_unit_service(u)->exec[KEEL_EXEC_START]->argv[1], "tty-1");
	assert_int_equal(keel_unit_service(u)->restart, KEEL_RESTART_ALWAYS);
	assert_int_equal(keel_pool_strv_len(u->dropin_paths), 1);
	keel_unit_free(u);
	u = load(f, "getty@tty2.service");
	assert_int_equal(keel_unit_service(u)->restart, KEEL_RESTART_ON_FAILURE); /* 20 after 10 */
	keel_unit_free(u);
	u = load(f, "getty@tty9.service"); /* an instance's own file wins over the template */
	assert_string_equal(desc(u), "special");
	keel_unit_free(u);
	u = load(f, "tty@tty3.service"); /* an alias of a template */
	assert_string_equal(u->id, "getty@tty3.service");
	assert_string_equal(u->aliases[0], "tty@tty3.service");
	keel_unit_free(u);
}

static void load_dropins_order_and_override(void **state)
{
	struct fx *f = *state;
	put(f, f->lib, "foo-bar-baz.service", "[Unit]\nDescription=base\n[Service]\nExecStart=/bin/true\nEnvironment=ORDER=base\n");
	put(f, f->lib, "foo-bar-baz.service.d/10-a.conf", "[Service]\nEnvironment=ORDER=lib10\nEnvironment=LIB10=1\n");
	put(f, f->lib, "foo-bar-baz.service.d/30-c.conf", "[Service]\nEnvironment=ORDER=lib30\n");
	put(f, f->etc, "foo-bar-baz.service.d/30-c.conf", "[Service]\nEnvironment=ORDER=etc30\n");
	put(f, f->run, "foo-bar-baz.service.d/20-b.conf", "[Service]\nEnvironment=ORDER=run20\nEnvironment=RUN20=1\n");
	put(f, f->lib, "foo-bar-baz.service.d/40-d.txt", "[Service]\nEnvironment=ORDER=not-a-conf\n");
	put(f, f->lib, "foo-bar-baz.service.d/.50-hidden.conf", "[Service]\nEnvironment=ORDER=hidden\n");
	put(f, f->lib, "foo-.service.d/05-prefix.conf", "[Service]\nEnvironment=PREFIX=1\n");
	put(f, f->lib, "foo-bar-.service.d/06-prefix.conf", "[Service]\nEnvironment=PREFIX2=1\n");
	put(f, f->lib, "service.d/01-type.conf", "[Service]\nEnvironment=TYPE=1\n");
	put(f, f->lib, "service.d/10-a.conf", "[Service]\nEnvironment=SHADOWED=1\n");
	link_to(f, f->etc, "foo-bar-baz.service.d/10-a.conf", "/dev/null"); /* masks lib's 10-a */
	put(f, f->etc, "foo-bar-baz.service.d/99-install.conf", "[Install]\nWantedBy=x.target\n");
	reload(f);
	struct keel_unit *u = load(f, "foo-bar-baz.service");
	const char **env = keel_unit_service(u)->exec_ctx.environment;
	char joined[512] = "";
	for (size_t i = 0; env && env[i]; i++)
		snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined), "%s ", env[i]);
	/* applied by file name: 01-type 05-prefix 06-prefix 10-a(masked) 20-b 30-c(etc's) 99 */
	assert_string_equal(joined, "ORDER=etc30 TYPE=1 PREFIX=1 PREFIX2=1 RUN20=1 ");
	assert_int_equal(keel_pool_strv_len(u->dropin_paths), 7);
	assert_null(u->install); /* [Install] is read from the unit file only */
	keel_unit_free(u);
}

static void load_wants_and_requires_directories(void **state)
{
	struct fx *f = *state;
	put(f, f->lib, "multi.target", "[Unit]\nDescription=multi\n");
	put(f, f->lib, "a.service", "[Service]\nExecStart=/bin/true\n");
	link_to(f, f->etc, "multi.target.wants/a.service", "../../lib/a.service");
	link_to(f, f->lib, "multi.target.wants/b@x.service", "/nonexistent/b@.service");
	link_to(f, f->run, "multi.target.requires/c.service", "/nonexistent/c.service");
	put(f, f->lib, "multi.target.wants/notalink.service", "[Service]\n");
	link_to(f, f->etc, "multi.target.wants/masked.service", "/dev/null");
	link_to(f, f->lib, "multi.target.wants/masked.service", "/x/masked.service");
	put(f, f->lib, "g@.service", "[Service]\nExecStart=/bin/true\n");
	link_to(f, f->lib, "g@.service.wants/h@.service", "/x/h@.service");
	reload(f);
	struct keel_unit *u = load(f, "multi.target");
	assert_true(keel_unit_has_dep(u, KEEL_DEP_WANTS, "a.service"));
	assert_true(keel_unit_has_dep(u, KEEL_DEP_WANTS, "b@x.service"));
	assert_true(keel_unit_has_dep(u, KEEL_DEP_REQUIRES, "c.service"));
	assert_false(keel_unit_has_dep(u, KEEL_DEP_WANTS, "notalink.service"));
	assert_false(keel_unit_has_dep(u, KEEL_DEP_WANTS, "masked.service"));
	assert_true(diag_has(&f->log, "Wants dependency dropin"));
	for (uint32_t i = 0; i < u->n_deps; i++)
		if (strcmp(u->deps[i].name, "a.service") == 0 && u->deps[i].kind == KEEL_DEP_WANTS)
			assert_int_equal(u->deps[i].origin, KEEL_DEP_FROM_LINK);
	keel_unit_free(u);
	u = load(f, "g@one.service"); /* a template entry gets the instance */
	assert_true(keel_unit_has_dep(u, KEEL_DEP_WANTS, "h@one.service"));
	keel_unit_free(u);
}

static bool is_link_to(const char *path, const char *target)
{
	char buf[512];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return strcmp(buf, target) == 0;
}

static void install_enable_disable_mask(void **state)
{
	struct fx *f = *state;
	char path[512], target[512];
	put(f, f->lib, "web.service",
	    "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target %p.target\n"
	    "RequiredBy=net.target\nAlias=www.service\nAlso=web.socket\n");
	put(f, f->lib, "web.socket", "[Socket]\nListenStream=80\n[Install]\nWantedBy=sockets.target\n");
	put(f, f->lib, "getty@.service",
	    "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=getty.target\nDefaultInstance=tty1\n");
	put(f, f->lib, "plain.service", "[Service]\nExecStart=/bin/true\n");
	reload(f);

	struct keel_install_plan p;
	assert_int_equal(keel_install_plan_enable(f->l, "web.service", f->etc, &p), 0);
	assert_int_equal(p.n, 5);
	assert_int_equal(keel_install_apply(f->l, &p), 0);
	keel_install_plan_free(&p);
	snprintf(target, sizeof(target), "%s/web.service", f->lib);
	snprintf(path, sizeof(path), "%s/multi-user.target.wants/web.service", f->etc);
	assert_true(is_link_to(path, target));
	snprintf(path, sizeof(path), "%s/web.target.wants/web.service", f->etc);
	assert_true(is_link_to(path, target));
	snprintf(path, sizeof(path), "%s/net.target.requires/web.service", f->etc);
	assert_true(is_link_to(path, target));
	snprintf(path, sizeof(path), "%s/www.service", f->etc);
	assert_true(is_link_to(path, target));
	snprintf(target, sizeof(target), "%s/web.socket", f->lib);
	snprintf(path, sizeof(path), "%s/sockets.target.wants/web.socket", f->etc);
	assert_true(is_link_to(path, target));

	/* enabling again changes nothing; the new links take effect after a rescan */
	assert_int_equal(keel_install_plan_enable(f->l, "web.service", f->etc, &p), 0);
	assert_int_equal(p.n, 0);
	keel_install_plan_free(&p);
	assert_int_equal(keel_loader_scan(f->l), 0);
	struct keel_unit *u = load(f, "www.service");
	assert_string_equal(u->id, "web.service");
	keel_unit_free(u);

	/* templates use DefaultInstance= */
	assert_int_equal(keel_install_plan_enable(f->l, "getty@.service", f->etc, &p), 0);
	assert_int_equal(p.n, 1);
	assert_true(strstr(p.v[0].path, "/getty.target.wants/getty@tty1.service") != NULL);
	keel_install_plan_free(&p);

	/* a unit without [Install] has nothing to enable */
	assert_int_equal(keel_install_plan_enable(f->l, "plain.service", f->etc, &p), 0);
	assert_int_equal(p.n, 0);
	keel_install_plan_free(&p);
	assert_true(diag_has(&f->log, "The unit files have no installation config"));

	/* disable removes every link enable made, and emptied .wants dirs */
	assert_int_equal(keel_install_plan_disable(f->l, "web.service", f->etc, &p), 0);
	assert_int_equal(p.n, 5);
	assert_int_equal(keel_install_apply(f->l, &p), 0);
	keel_install_plan_free(&p);
	snprintf(path, sizeof(path), "%s/multi-user.target.wants", f->etc);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/www.service", f->etc);
	assert_int_equal(access(path, F_OK), -1);

	/* mask and unmask */
	assert_int_equal(keel_install_plan_mask(f->l, "web.service", f->etc, &p), 0);
	assert_int_equal(keel_install_apply(f->l, &p), 0);
	keel_install_plan_free(&p);
	assert_int_equal(keel_loader_scan(f->l), 0);
	u = load(f, "web.service");
	assert_int_equal(u->load_state, KEEL_LOAD_MASKED);
	keel_unit_free(u);
	assert_int_equal(keel_install_plan_enable(f->l, "web.service", f->etc, &p), -ERFKILL);
	assert_int_equal(keel_install_plan_unmask(f->l, "web.service", f->etc, &p), 0);
	assert_int_equal(p.n, 1);
	assert_int_equal(keel_install_apply(f->l, &p), 0);
	keel_install_plan_free(&p);
	assert_int_equal(keel_loader_scan(f->l), 0);
	u = load(f, "web.service");
	assert_int_equal(u->load_state, KEEL_LOAD_LOADED);
	keel_unit_free(u);

	/* a file in the way of a link is an error, not overwritten */
	put(f, f->etc, "www.service", "[Service]\nExecStart=/bin/false\n");
	assert_int_equal(keel_install_plan_enable(f->l, "web.service", f->etc, &p), -EEXIST);
	/* and masking a unit whose name has a real file in config_dir too */
	assert_int_equal(keel_install_plan_mask(f->l, "www.service", f->etc, &p), -EEXIST);
}

static void load_fifo_dropin_fails_instead_of_hanging(void **state)
{
	struct fx *f = *state;
	char path[512];
	put(f, f->lib, "a.service", "[Service]\nExecStart=/bin/true\n");
	snprintf(path, sizeof(path), "%s/a.service.d", f->etc);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/a.service.d/x.conf", f->etc);
	assert_int_equal(mkfifo(path, 0600), 0);
	reload(f);
	struct keel_unit *u = load(f, "a.service");
	assert_int_equal(u->load_state, KEEL_LOAD_ERROR);
	assert_int_equal(u->load_error, -EBADFD);
	assert_true(diag_has(&f->log, "a.service: Failed to read "));
	keel_unit_free(u);
}

static int count_name(void *ud, const char *name, const struct keel_unit_lookup *lu)
{
	int *n = ud;
	(*n)++;
	return 0;
}

static void load_foreach_lists_every_name(void **state)
{
	struct fx *f = *state;
	put(f, f->lib, "a.service", "[Service]\nExecStart=/bin/true\n");
	put(f, f->lib, "b@.service", "[Service]\nExecStart=/bin/true\n");
	put(f, f->run, "a.service", "[Service]\nExecStart=/bin/true\n");
	link_to(f, f->etc, "c.service", "/dev/null");
	put(f, f->lib, "not-a-unit.txt", "x");
	reload(f);
	int n = 0;
	assert_int_equal(keel_loader_foreach_name(f->l, count_name, &n), 0);
	assert_int_equal(n, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(load_search_path_priority, setup, teardown),
		cmocka_unit_test_setup_teardown(load_masks, setup, teardown),
		cmocka_unit_test_setup_teardown(load_aliases_and_links, setup, teardown),
		cmocka_unit_test_setup_teardown(load_templates_and_instances, setup, teardown),
		cmocka_unit_test_setup_teardown(load_dropins_order_and_override, setup, teardown),
		cmocka_unit_test_setup_teardown(load_wants_and_requires_directories, setup, teardown),
		cmocka_unit_test_setup_teardown(install_enable_disable_mask, setup, teardown),
		cmocka_unit_test_setup_teardown(load_foreach_lists_every_name, setup, teardown),
		cmocka_unit_test_setup_teardown(load_fifo_dropin_fails_instead_of_hanging, setup, teardown),
	};
	return cmocka_run_group_tests_name("init/load", tests, NULL, NULL);
}
