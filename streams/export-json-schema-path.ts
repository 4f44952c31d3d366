export const schemaFolder = new URL("../schemas/", import.meta.url).pathname;
