/* Placeholder until the server wiring lands in this file. */
int main(void)
{
    return 0;
}
