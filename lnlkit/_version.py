"""The package version, in a module of its own so that lnlkit's modules can record it without importing the
package root (which imports them: an import cycle)."""

__version__ = "0.1.0"
