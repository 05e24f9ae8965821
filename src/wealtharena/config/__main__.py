"""`python -m wealtharena.config > docs/configuration.md`"""

import sys

from wealtharena.config.reference import markdown_reference

sys.stdout.write(markdown_reference())
