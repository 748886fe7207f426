"""HTTP plumbing the REST API and the dashboard share, below both so neither imports the other.

Which kinds of file each upload accepts is not decided here: the services that read the files name
their suffixes, and the routes pass those along.
"""
