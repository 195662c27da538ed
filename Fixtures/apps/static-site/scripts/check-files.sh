#!/bin/sh
# AfterInstall: the page must be in place and readable.
set -eu
root="${DEPLOYCTL_INSTALL_ROOT:-}/var/www/static-site"
test -r "$root/index.html"
echo "static-site: index.html installed under $root"
