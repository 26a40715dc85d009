#!/usr/bin/env bash
# Debian packages MiniRAG uses outside Python, by group; installs the missing ones with apt-get.
#
#   scripts/ensure_system_packages.sh ocr test-fonts    # `make test`: missing packages are an error
#   scripts/ensure_system_packages.sh --optional ocr    # `make run`: says what is missing, goes on
#
# Groups:
#   ocr         Tesseract and its English, German and French data (sources/extraction/ocr.py reads
#               scanned PDFs and images with it; the Dockerfile installs the same packages).
#   test-fonts  DejaVu, the TrueType font the OCR tests draw their German and French text with.
#   eval-docs   The PostgreSQL 15 and Django documentation `make eval` asks questions about
#               (evaluation/sets/postgresql.json, django.json).
# Installing needs root and apt-get; otherwise the command to run is printed.
set -euo pipefail

optional=false
if [ "${1:-}" = "--optional" ]; then
  optional=true
  shift
fi

packages_of() {  # group
  case "$1" in
    ocr) echo "tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu tesseract-ocr-fra" ;;
    test-fonts) echo "fonts-dejavu-core" ;;
    eval-docs) echo "postgresql-doc-15 python-django-doc" ;;
    *) echo "error: unknown package group '$1' (ocr, test-fonts, eval-docs)" >&2; exit 64 ;;
  esac
}

installed() {  # package
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

present_without_dpkg() {  # group: what a system without Debian's package database must have
  case "$1" in
    ocr) command -v tesseract >/dev/null 2>&1 &&
         [ "$(tesseract --list-langs 2>/dev/null | grep -cxE 'eng|deu|fra')" = 3 ] ;;
    test-fonts) fc-list 2>/dev/null | grep -qi 'DejaVuSans\.ttf' ;;
    eval-docs) [ -d /usr/share/doc/postgresql-doc-15/html ] && [ -d /usr/share/doc/python-django-doc/html ] ;;
  esac
}

for group in "$@"; do
  packages_of "$group" >/dev/null  # an unknown group stops here (not inside $(...) below)
done
missing=()
for group in "$@"; do
  if ! command -v dpkg-query >/dev/null 2>&1 && present_without_dpkg "$group"; then
    continue
  fi
  for package in $(packages_of "$group"); do
    installed "$package" || missing+=("$package")
  done
done
[ ${#missing[@]} -eq 0 ] && exit 0

if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "Installing ${missing[*]} with apt-get (once)..."
  export DEBIAN_FRONTEND=noninteractive
  if apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
     { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
    exit 0
  fi
  $optional || { echo "error: apt-get could not install ${missing[*]}." >&2; exit 1; }
fi

if $optional; then
  echo "note: ${missing[*]} not installed (apt-get install -y ${missing[*]}); what needs them is off" \
       "(without tesseract-ocr: OCR of scanned PDFs and images)."
  exit 0
fi
echo "error: missing Debian packages ${missing[*]} (apt-get install -y ${missing[*]}; run as root)." >&2
exit 1
