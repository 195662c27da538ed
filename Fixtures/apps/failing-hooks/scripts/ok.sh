#!/bin/sh
echo "ok as $(id -un)"
