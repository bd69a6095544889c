"""The functional core: values in, values out. Imports the standard library and the project's
reference data, never Kafka, Faust, fastavro or prometheus-client (a test checks this)."""
