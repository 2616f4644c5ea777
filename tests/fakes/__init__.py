"""Local stand-ins for hypervisor APIs: vcsim (a real simulator, built from Debian's
govmomi) and small stateful servers that answer the requests each SDK sends and record
them, so the contract tests can check both the exact requests and the final VM state.
flow.py runs one VM through a driver the way those tests all need."""
