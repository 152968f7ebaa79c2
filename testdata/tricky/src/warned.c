int warned_value(int x)
{
    int unused_here;
    return x * 2;
}
