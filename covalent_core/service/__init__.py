"""The local dispatcher service: started on demand, serves every client of one store, exits idle."""
