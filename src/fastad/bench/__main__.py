"""`python -m fastad.bench`; the command line itself is in `cli`, so that importing the
package does not import this module (runpy warns when `-m` finds it already imported)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
